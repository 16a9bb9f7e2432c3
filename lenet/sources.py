"""Reading CIFAR-10 from the places users keep it, into uint8 arrays (N, 3, 32, 32).

Three kinds of source, recognised by what is at the path:

1. torchvision's download (no path given): fetched once into the cache directory;
2. the python release: `cifar-10-python.tar.gz`, or its extracted `cifar-10-batches-py/`;
3. an image-folder tree `ROOT/{train,test}/<class>/*.{png,jpg}`, or a `.tar.gz`/`.zip` of one.

Everything here runs once per data set and machine: `lenet.data` caches the result.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import torch
from PIL import Image

from lenet.errors import DataError

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
PYTHON_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
TORCHVISION_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
TORCHVISION_MD5 = "c58f30108f718f92721af3b95e74349a"


@dataclass(frozen=True)
class RawSplits:
    """Decoded images as uint8 (N, 3, 32, 32) and labels as int64 (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]


def default_cache_dir() -> Path:
    env = os.environ.get("LENET_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lenet-search"


def source_key(path: Path) -> str:
    """A checksum of the source's content: the bytes of an archive, or for a directory
    every file's relative path, size and modification time (hashing 60,000 small files'
    bytes on each load would cost more than the cache saves)."""
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def read_source(path: Path) -> RawSplits:
    """Decode any supported source at `path`; raises DataError naming the path on failure."""
    if not path.exists():
        raise DataError(f"data path {path} does not exist (expected a CIFAR-10 archive or directory)")
    try:
        if path.is_dir():
            return _read_directory(path)
        name = path.name.lower()
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return _read_tar(path)
        if name.endswith(".zip"):
            return _read_zip(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, pickle.UnpicklingError) as exc:
        raise DataError(f"data path {path} is corrupt or unreadable: {exc}") from exc
    raise DataError(
        f"data path {path} is not a CIFAR-10 source (expected cifar-10-python.tar.gz, "
        "cifar-10-batches-py/, or an image folder ROOT/{train,test}/<class>/ or a .tar.gz/.zip of one)"
    )


def download_torchvision(cache_dir: Path) -> Path:
    """torchvision's CIFAR-10 download into the cache; returns the extracted batches dir."""
    from torchvision.datasets.utils import download_and_extract_archive

    root = cache_dir / "torchvision"
    batches = root / "cifar-10-batches-py"
    if not all((batches / name).is_file() for name in PYTHON_BATCHES):
        try:
            download_and_extract_archive(TORCHVISION_URL, str(root), md5=TORCHVISION_MD5)
        except Exception as exc:  # any network or checksum failure
            raise DataError(
                f"could not download CIFAR-10 into {root} ({exc}); offline, give the path of a "
                "cifar-10-python.tar.gz or an image-folder archive",
                subject="data",
            ) from exc
    return batches


# -- the python release (pickled batches) ------------------------------------------------


# What a CIFAR-10 batch is made of (numpy arrays, in old and new numpy's module names); any other
# global in the pickle is refused before it is called: unpickling can run arbitrary code.
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),  # how protocol 2 stores bytes
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR-10 batch never holds")
        return super().find_class(module, name)


def _unpickle_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        batch = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{where} is not a CIFAR-10 python batch: {exc}") from None
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError) as exc:
        raise DataError(f"{where} is not a CIFAR-10 python batch (no data/labels)") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{where} holds data of shape {data.shape}, expected (N, 3072) with N labels")
    return data.reshape(-1, 3, 32, 32), labels


def _from_python_batches(batches: dict[str, bytes], where: str) -> RawSplits:
    missing = [name for name in PYTHON_BATCHES if name not in batches]
    if missing:
        raise DataError(f"{where} lacks CIFAR-10 batches {', '.join(missing)}")
    train = [_unpickle_batch(batches[name], f"{where}/{name}") for name in PYTHON_BATCHES[:-1]]
    test_x, test_y = _unpickle_batch(batches["test_batch"], f"{where}/test_batch")
    return RawSplits(
        train_x=torch.from_numpy(np.concatenate([x for x, _ in train])),
        train_y=torch.from_numpy(np.concatenate([y for _, y in train])),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y),
        classes=CLASSES,
    )


# -- image folders -------------------------------------------------------------------------


def _image_folder_members(names: list[str]) -> tuple[str, dict[str, dict[str, list[str]]]] | None:
    """Find `{train,test}/<class>/<image>` among archive member names, under any one prefix.

    Returns (prefix, {split: {class: [member names]}}), or None if there is no such tree.
    """
    tree: dict[str, dict[str, dict[str, list[str]]]] = {}
    for name in names:
        parts = PurePosixPath(name).parts
        if len(parts) < 3 or not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        split, cls = parts[-3], parts[-2]
        if split not in ("train", "test"):
            continue
        prefix = "/".join(parts[:-3])
        tree.setdefault(prefix, {}).setdefault(split, {}).setdefault(cls, []).append(name)
    complete = {p: t for p, t in tree.items() if set(t) == {"train", "test"}}
    if not complete:
        return None
    prefix = min(complete, key=len)
    return prefix, complete[prefix]


def _decode_images(blobs: list[bytes], names: list[str], where: str) -> torch.Tensor:
    """Decode encoded images into one uint8 (N, 3, 32, 32) tensor.

    Pillow rather than torchvision.io, whose codecs are deprecated since torchvision 0.29;
    this runs once per source (about 4 s for CIFAR-10's 60,000 JPEGs) and is then cached.
    """
    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    for i, (blob, name) in enumerate(zip(blobs, names)):
        try:
            with Image.open(io.BytesIO(blob)) as img:
                size = img.size
                if size == (32, 32):
                    out[i] = np.asarray(img.convert("RGB"))
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"{where}: {name} is not a readable image ({exc})") from exc
        if size != (32, 32):
            raise DataError(f"{where}: {name} is {size[0]}x{size[1]}, expected 32x32")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _from_image_members(where: str, tree: dict[str, dict[str, list[str]]], read: Callable[[str], bytes]) -> RawSplits:
    classes = tuple(sorted(tree["train"]))
    if len(classes) != len(CLASSES):
        raise DataError(
            f"{where}: train/ has {len(classes)} class folders ({', '.join(classes)}), CIFAR-10 needs {len(CLASSES)}"
        )
    if tuple(sorted(tree["test"])) != classes:
        raise DataError(f"{where}: test/ class folders {sorted(tree['test'])} differ from train/'s {list(classes)}")
    arrays = []
    for split in ("train", "test"):
        names, labels = [], []
        for label, cls in enumerate(classes):
            files = sorted(tree[split][cls])
            names += files
            labels += [label] * len(files)
        blobs = [read(n) for n in names]
        arrays += [_decode_images(blobs, names, where), torch.tensor(labels, dtype=torch.int64)]
    return RawSplits(*arrays, classes=classes)


# -- containers ------------------------------------------------------------------------------


def _read_directory(path: Path) -> RawSplits:
    for batches_dir in (path, path / "cifar-10-batches-py"):
        if (batches_dir / "data_batch_1").is_file():
            blobs = {n: (batches_dir / n).read_bytes() for n in PYTHON_BATCHES if (batches_dir / n).is_file()}
            return _from_python_batches(blobs, str(batches_dir))
    files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    found = _image_folder_members(files)
    if found is None:
        raise DataError(
            f"data path {path} holds neither cifar-10-batches-py nor an image folder {{train,test}}/<class>/*.png|jpg"
        )
    return _from_image_members(str(path), found[1], lambda n: (path / n).read_bytes())


def _read_tar(path: Path) -> RawSplits:
    with tarfile.open(path) as tar:
        members = {m.name: m for m in tar if m.isfile()}
        by_base = {PurePosixPath(n).name: n for n in members}
        if "data_batch_1" in by_base:
            blobs = {base: _tar_bytes(tar, members[by_base[base]]) for base in PYTHON_BATCHES if base in by_base}
            return _from_python_batches(blobs, str(path))
        found = _image_folder_members(list(members))
        if found is None:
            raise DataError(
                f"archive {path} holds neither cifar-10-batches-py nor an image folder {{train,test}}/<class>/*.png|jpg"
            )
        return _from_image_members(str(path), found[1], lambda n: _tar_bytes(tar, members[n]))


def _tar_bytes(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    fh = tar.extractfile(member)
    if fh is None:
        raise DataError(f"archive member {member.name} cannot be read")
    return fh.read()


def _read_zip(path: Path) -> RawSplits:
    with zipfile.ZipFile(path) as zf:
        names = [i.filename for i in zf.infolist() if not i.is_dir()]
        found = _image_folder_members(names)
        if found is None:
            raise DataError(f"zip {path} holds no image folder {{train,test}}/<class>/*.png|jpg")
        return _from_image_members(str(path), found[1], zf.read)
