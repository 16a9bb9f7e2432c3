"""Small synthetic CIFAR-10 look-alikes that a model can actually learn, in every source format."""

from __future__ import annotations

import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from lenet.curve import EvalRecord
from lenet.sources import CLASSES


def make_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, 3, 32, 32) images whose class sets both a colour and a stripe pattern,
    under heavy noise: easy for a CNN, far from trivial for chance."""
    rng = np.random.default_rng(seed)
    palette = np.random.default_rng(1234).uniform(40, 215, size=(len(CLASSES), 3))
    ys = np.repeat(np.arange(len(CLASSES)), n_per_class)
    rng.shuffle(ys)
    grid = np.arange(32)
    xs = np.empty((len(ys), 3, 32, 32), dtype=np.uint8)
    for i, y in enumerate(ys):
        stripes = 40 * np.sin(2 * np.pi * (y % 5 + 1) * (grid if y < 5 else grid[:, None]) / 32)
        img = palette[y][:, None, None] + stripes + rng.normal(0, 30, size=(3, 32, 32))
        xs[i] = np.clip(img, 0, 255).astype(np.uint8)
    return xs, ys.astype(np.int64)


def write_python_batches(root: Path, n_per_class: int = 30, test_per_class: int = 10) -> Path:
    """cifar-10-batches-py/ with data_batch_1..5 and test_batch, as the python release has."""
    batches = root / "cifar-10-batches-py"
    batches.mkdir(parents=True)
    x, y = make_images(n_per_class, seed=1)
    tx, ty = make_images(test_per_class, seed=2)
    for i, (part_x, part_y) in enumerate(zip(np.array_split(x, 5), np.array_split(y, 5)), start=1):
        _dump(batches / f"data_batch_{i}", part_x, part_y)
    _dump(batches / "test_batch", tx, ty)
    return batches


def _dump(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    with path.open("wb") as fh:
        pickle.dump({b"data": x.reshape(len(x), -1), b"labels": y.tolist()}, fh)


def write_image_folder(root: Path, n_per_class: int = 6, test_per_class: int = 2, classes=CLASSES) -> Path:
    """ROOT/{train,test}/<class>/NNNN.png (PNG, so pixels round-trip exactly)."""
    for split, n, seed in (("train", n_per_class, 1), ("test", test_per_class, 2)):
        x, y = make_images(n, seed)
        for k, cls in enumerate(classes):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for j, img in enumerate(x[y == k % len(CLASSES)]):
                Image.fromarray(img.transpose(1, 2, 0)).save(folder / f"{j:04d}.png")
    return root


def tar_gz(src: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src, arcname=src.name)
    return dest


def zip_dir(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for file in sorted(src.rglob("*")):
            if file.is_file():
                zf.write(file, f"{src.name}/{file.relative_to(src).as_posix()}")
    return dest


def eval_record(epoch: float, seconds: float, accuracy: float, step: int = 0) -> EvalRecord:
    """A curve point with training and validation accuracy `accuracy`, 10 images a step."""
    return EvalRecord(
        epoch=epoch,
        step=step,
        images=step * 10,
        train_seconds=seconds,
        wall_seconds=seconds,
        lr=0.1,
        train_loss=1.0,
        train_accuracy=accuracy,
        val_loss=1.0,
        val_accuracy=accuracy,
    )
