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
import lzma
import os
import pickle
import pickletools
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

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

# Bounds on what a source may hold, checked on the sizes an archive declares before anything is
# read whole and again while reading: a hostile archive's bytes inflate no further than these.
_MIB = 1 << 20
MEMBER_MAX_BYTES = 512 * _MIB  # the largest real member is a python batch, 31 MB (185 MB re-pickled as protocol 0)
IMAGE_MAX_BYTES = 1 * _MIB  # a 32x32 image is 1-3 KB as JPEG or PNG; room for any metadata besides
ARCHIVE_MAX_BYTES = 2048 * _MIB  # the python release inflates to 186 MB, 60,000 PNGs and their tar headers to ~250 MB
ARCHIVE_MAX_MEMBERS = 500_000  # 60,000 images (120,000 with macOS's ._ companions); bounds the member list's memory
TAR_EXTENSION_MAX_BYTES = 1 * _MIB  # pax headers and GNU long names hold a path and a few attributes (bytes to KB)
TAR_EXTENSION_MAX_HEADERS = 8  # a member has at most a global and a local pax header, a long name and a long link
PICKLE_MAX_OPCODES = 1_000_000  # a real batch is 30,000-120,000 opcodes (protocol 4 to 0); each can make one object
IMAGE_FORMATS = ("PNG", "JPEG")  # what image folders hold: Pillow's other decoders are not offered untrusted bytes


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
    except (
        tarfile.TarError,
        zipfile.BadZipFile,
        EOFError,
        OSError,
        pickle.UnpicklingError,
        zlib.error,  # a zip member's deflate stream corrupt (tarfile turns its own into ReadError)
        lzma.LZMAError,
    ) as exc:
        detail = " ".join(str(exc).split())  # tarfile's lists each method it tried on a line of its own
        raise DataError(f"data path {path} is corrupt or unreadable: {detail}") from exc
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


def _count_opcodes(raw: bytes, where: str) -> None:
    """Refuse a pickle of more than PICKLE_MAX_OPCODES opcodes before any is run: each can make an
    object of ~60 bytes, so 512 MiB of one-byte opcodes (a ~0.5 MB download) would fill 30 GB."""
    try:
        for count, _ in enumerate(pickletools.genops(raw), start=1):
            if count > PICKLE_MAX_OPCODES:
                raise DataError(
                    f"{where} is not a CIFAR-10 python batch: it holds over {PICKLE_MAX_OPCODES:,} pickle "
                    "opcodes (the bound on one batch; a real one has ~100,000 at most)"
                )
    except ValueError as exc:  # an unknown opcode, or an argument past the end
        raise DataError(f"{where} is not a CIFAR-10 python batch: {exc}") from None


def _unpickle_batch(raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    _count_opcodes(raw, where)
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
    Image.open reads only the header: the declared size is checked before a pixel is decoded.
    Pillow's own bound (an error past ~179 million pixels, a warning past half that) is
    turned into the same refusal and silenced, as any size but 32x32 is refused anyway.
    """
    out = np.empty((len(blobs), 32, 32, 3), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        for i, (blob, name) in enumerate(zip(blobs, names)):
            try:
                with Image.open(io.BytesIO(blob), formats=IMAGE_FORMATS) as img:
                    size = img.size
                    if size == (32, 32):
                        out[i] = np.asarray(img.convert("RGB"))
            except Image.DecompressionBombError as exc:
                raise DataError(f"{where}: {name} declares a size far over 32x32, refused undecoded ({exc})") from None
            except (OSError, SyntaxError, ValueError) as exc:
                raise DataError(f"{where}: {name} is not a readable image ({exc})") from exc
            if size != (32, 32):
                raise DataError(f"{where}: {name} is {size[0]}x{size[1]}, expected 32x32 (refused undecoded)")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _from_image_members(
    where: str, tree: dict[str, dict[str, list[str]]], read: Callable[[str, int], bytes]
) -> RawSplits:
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
        blobs = [read(n, IMAGE_MAX_BYTES) for n in names]
        arrays += [_decode_images(blobs, names, where), torch.tensor(labels, dtype=torch.int64)]
    return RawSplits(*arrays, classes=classes)


# -- containers ------------------------------------------------------------------------------


class _Budget:
    """The members of one source, counted with their sizes as they are listed (or, in a
    directory, read): past the bounds the source is refused before the next one is touched."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.members = 0
        self.bytes = 0

    def admit(self, name: str, size: int, limit: int | None = None) -> None:
        self.members += 1
        if self.members > ARCHIVE_MAX_MEMBERS:
            raise DataError(f"{self.where} holds over {ARCHIVE_MAX_MEMBERS:,} members, the bound on a CIFAR-10 source")
        if size < 0:  # tarfile accepts one, and would walk backwards
            raise DataError(f"{self.where}: {name} declares a negative size ({size:,} bytes)")
        _check_size(self.where, name, size, MEMBER_MAX_BYTES if limit is None else limit)
        self.bytes += size
        if self.bytes > ARCHIVE_MAX_BYTES:
            raise DataError(
                f"{self.where}: its members up to {name} add up to {self.bytes:,} bytes uncompressed, "
                f"over the bound of {_mib(ARCHIVE_MAX_BYTES)} on a whole source"
            )


def _mib(limit: int) -> str:
    return f"{limit // _MIB:,} MiB" if limit % _MIB == 0 else f"{limit:,} bytes"


def _check_size(where: str, name: str, size: int, limit: int) -> None:
    if size > limit:
        what = "one image" if limit == IMAGE_MAX_BYTES else "one member"
        raise DataError(f"{where}: {name} is {size:,} bytes, over the bound of {_mib(limit)} on {what}")


def _read_bounded(fh: IO[bytes], where: str, name: str, declared: int) -> bytes:
    """The `declared` bytes of a member (already checked against its bound), read so that a
    header understating them cannot make it read more: a refusal if there are more."""
    data = fh.read(declared + 1)
    if len(data) > declared:
        raise DataError(f"{where}: {name} holds more than the {declared:,} bytes its header declares")
    return data


def _read_directory(path: Path) -> RawSplits:
    budget = _Budget(str(path))

    def read(file: Path, name: str, limit: int) -> bytes:
        size = file.stat().st_size
        budget.admit(name, size, limit)
        with file.open("rb") as fh:
            return _read_bounded(fh, str(path), name, size)

    for batches_dir in (path, path / "cifar-10-batches-py"):
        if (batches_dir / "data_batch_1").is_file():
            blobs = {
                n: read(batches_dir / n, (batches_dir / n).relative_to(path).as_posix(), MEMBER_MAX_BYTES)
                for n in PYTHON_BATCHES
                if (batches_dir / n).is_file()
            }
            return _from_python_batches(blobs, str(batches_dir))
    files = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    found = _image_folder_members(files)
    if found is None:
        raise DataError(
            f"data path {path} holds neither cifar-10-batches-py nor an image folder {{train,test}}/<class>/*.png|jpg"
        )
    return _from_image_members(str(path), found[1], lambda n, limit: read(path / n, n, limit))


_TAR_EXTENSIONS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _BoundedTarInfo(tarfile.TarInfo):
    """A tar header that bounds what tarfile reads whole before a member is listed: the
    extension headers (pax headers, GNU long names) before it, each read into memory and
    each recursing into the next header."""

    def _proc_member(self, tar: _BoundedTarFile) -> tarfile.TarInfo:
        if self.type == tarfile.GNUTYPE_SPARSE:  # its holes read as zeros: a size that costs nothing to declare
            raise DataError(f"{tar.where}: {self.name} is a sparse file, which no CIFAR-10 archive holds")
        if self.type not in _TAR_EXTENSIONS:
            tar.extension_bytes = tar.extension_headers = 0
            return super()._proc_member(tar)
        tar.extension_bytes += self.size
        tar.extension_headers += 1
        if tar.extension_bytes > TAR_EXTENSION_MAX_BYTES:
            raise DataError(
                f"{tar.where}: the extension headers (pax, GNU long names) in a row up to byte {self.offset:,} "
                f"hold {tar.extension_bytes:,} bytes, over the bound of {_mib(TAR_EXTENSION_MAX_BYTES)} on one member's"
            )
        if tar.extension_headers > TAR_EXTENSION_MAX_HEADERS:
            raise DataError(
                f"{tar.where}: over {TAR_EXTENSION_MAX_HEADERS} extension headers (pax, GNU long names) in a row "
                f"at byte {self.offset:,}, the bound on one member's"
            )
        return super()._proc_member(tar)


class _BoundedTarFile(tarfile.TarFile):
    tarinfo = _BoundedTarInfo

    def __init__(self, *args: Any, where: str, **kwargs: Any) -> None:
        self.where = where  # the source, as messages name it
        self.extension_bytes = 0  # of the extension headers since the last member
        self.extension_headers = 0
        super().__init__(*args, **kwargs)


def _read_tar(path: Path) -> RawSplits:
    where = f"archive {path}"
    with _BoundedTarFile.open(path, where=where) as tar:
        budget = _Budget(where)
        members: dict[str, tarfile.TarInfo] = {}
        for member in tar:  # each checked before the walk to the next one inflates its bytes
            budget.admit(member.name, member.size)
            if member.isfile():
                members[member.name] = member

        def read(name: str, limit: int) -> bytes:
            member = members[name]
            _check_size(where, name, member.size, limit)
            fh = tar.extractfile(member)
            if fh is None:
                raise DataError(f"{where}: member {name} cannot be read")
            with fh:
                return _read_bounded(fh, where, name, member.size)

        def read_in_archive_order(names: list[str], limit: int) -> dict[str, bytes]:
            # in a compressed tar, reading an earlier member again inflates the archive again from its start
            return {n: read(n, limit) for n in sorted(names, key=lambda n: members[n].offset_data)}

        by_base = {PurePosixPath(n).name: n for n in members}
        if "data_batch_1" in by_base:
            found_batches = {by_base[base]: base for base in PYTHON_BATCHES if base in by_base}
            blobs = read_in_archive_order(list(found_batches), MEMBER_MAX_BYTES)
            return _from_python_batches({found_batches[n]: blob for n, blob in blobs.items()}, str(path))
        found = _image_folder_members(list(members))
        if found is None:
            raise DataError(
                f"archive {path} holds neither cifar-10-batches-py nor an image folder {{train,test}}/<class>/*.png|jpg"
            )
        images = [n for classes in found[1].values() for names in classes.values() for n in names]
        image_blobs = read_in_archive_order(images, IMAGE_MAX_BYTES)
        return _from_image_members(str(path), found[1], lambda n, _limit: image_blobs[n])


def _read_zip(path: Path) -> RawSplits:
    where = f"zip {path}"
    with zipfile.ZipFile(path) as zf:
        budget = _Budget(where)
        infos: dict[str, zipfile.ZipInfo] = {}
        for info in zf.infolist():
            budget.admit(info.filename, info.file_size)
            if not info.is_dir():
                infos[info.filename] = info

        def read(name: str, limit: int) -> bytes:
            info = infos[name]
            _check_size(where, name, info.file_size, limit)
            if info.flag_bits & 0x1:
                raise DataError(f"{where}: {name} is encrypted, which no CIFAR-10 archive is")
            try:
                with zf.open(info) as fh:  # it stops at the declared size, then checks the CRC
                    return _read_bounded(fh, where, name, info.file_size)
            except NotImplementedError as exc:  # a compression method zipfile lacks
                raise DataError(f"{where}: {name} cannot be read ({exc})") from None

        found = _image_folder_members(list(infos))
        if found is None:
            raise DataError(f"zip {path} holds no image folder {{train,test}}/<class>/*.png|jpg")
        return _from_image_members(str(path), found[1], read)
