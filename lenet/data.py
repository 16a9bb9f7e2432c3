"""CIFAR-10 resident on the training device: decoded once, cached on disk, split, normalised.

The hot path has no DataLoader, no PIL and no per-sample Python: a batch is an index slice
of tensors that already sit (normalised, channels-last) on the device, and augmentation is
done per batch on the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lenet.atomic import atomic_write, remove_stale_temporaries
from lenet.errors import DataError, DiskFullError
from lenet.sources import RawSplits, default_cache_dir, download_torchvision, read_source, source_key

DATA_ENV = "LENET_DATA"
CACHE_FORMAT = 1  # bump when the cached tensors' layout changes
DEFAULT_VAL_SIZE = 5000
DEFAULT_SPLIT_SEED = 0


@dataclass(frozen=True)
class CachedRaw:
    """Decoded data plus the checksum of the source it came from (provenance)."""

    raw: RawSplits
    checksum: str
    source: str


def resolve_data_path(data: str | os.PathLike[str] | None) -> Path | None:
    """The explicit path, else $LENET_DATA, else None (torchvision's download)."""
    if data is None or str(data) == "":
        data = os.environ.get(DATA_ENV) or None
    return None if data is None else Path(data).expanduser()


def load_raw(data: str | os.PathLike[str] | None = None, cache_dir: Path | None = None) -> CachedRaw:
    """Decode the source (or take it from the on-disk cache, keyed by the source's content).

    The cache's temporary files that a killed decode left behind (~185 MB each for CIFAR-10)
    are removed first (lenet.atomic.remove_stale_temporaries)."""
    cache_dir = cache_dir or default_cache_dir()
    remove_stale_temporaries(cache_dir)
    path = resolve_data_path(data)
    if path is None:
        path = download_torchvision(cache_dir)
    if not path.exists():
        raise DataError(f"data path {path} does not exist (expected a CIFAR-10 archive or directory)")
    checksum = source_key(path)
    cache_file = cache_dir / f"cifar10-{checksum[:24]}-v{CACHE_FORMAT}.pt"
    raw = _read_cache(cache_file)
    if raw is None:
        raw = read_source(path)
        _write_cache(cache_file, raw)
    return CachedRaw(raw=raw, checksum=checksum, source=str(path))


def _read_cache(cache_file: Path) -> RawSplits | None:
    if not cache_file.is_file():
        return None
    try:
        blob = torch.load(cache_file, map_location="cpu", weights_only=True)
        raw = RawSplits(
            train_x=blob["train_x"],
            train_y=blob["train_y"],
            test_x=blob["test_x"],
            test_y=blob["test_y"],
            classes=tuple(blob["classes"]),
        )
    except Exception:  # unreadable cache: decode the source again and overwrite it
        return None
    if raw.train_x.dtype != torch.uint8 or raw.train_x.shape[1:] != (3, 32, 32):
        return None
    return raw


def _write_cache(cache_file: Path, raw: RawSplits) -> None:
    """Written atomically, so a reader never sees half a cache. A full device is refused in one
    line (better known before hours of a study than at its export); other write errors (a
    read-only cache location) only cost speed."""
    blob = {
        "train_x": raw.train_x,
        "train_y": raw.train_y,
        "test_x": raw.test_x,
        "test_y": raw.test_y,
        "classes": list(raw.classes),
    }
    try:
        atomic_write(cache_file, lambda fh: torch.save(blob, fh))
    except DiskFullError as exc:
        raise DiskFullError(
            f"{exc} (the decoded data's cache: free space there, or set LENET_CACHE to a folder on another device)",
            path=exc.path,
        ) from exc
    except OSError:
        pass  # a read-only cache location only costs speed: the next load decodes again


def split_indices(labels: torch.Tensor, val_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stratified, seeded train/validation split of the training set; sorted index tensors."""
    n = len(labels)
    if not 0 < val_size < n:
        raise DataError(f"validation size must be between 1 and {n - 1}, got {val_size}")
    # Imported here: scikit-learn takes 0.8 s to import, and a caller of lenet that never
    # splits data should not pay it (docs/engine.md, "Start-up").
    from sklearn.model_selection import train_test_split

    train_idx, val_idx = train_test_split(
        torch.arange(n).numpy(), test_size=val_size, random_state=seed, stratify=labels.numpy()
    )
    return torch.from_numpy(train_idx).sort().values, torch.from_numpy(val_idx).sort().values


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (population) of uint8 images, scaled to [0, 1].

    A 256-bin histogram per channel is exact for uint8 and ~20x faster than float64
    reductions over 138 M values.
    """
    levels = torch.arange(256, dtype=torch.float64) / 255
    means, stds = [], []
    for c in range(images.shape[1]):
        hist = torch.bincount(images[:, c].reshape(-1), minlength=256).double()
        total = hist.sum()
        mean = (hist * levels).sum() / total
        var = (hist * (levels - mean) ** 2).sum() / total
        means.append(mean.item())
        stds.append(var.sqrt().item())
    return tuple(means), tuple(stds)


@dataclass(frozen=True)
class DeviceData:
    """Normalised float tensors on one device, ready to be sliced into batches."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    checksum: str
    source: str
    val_size: int
    split_seed: int

    @property
    def device(self) -> torch.device:
        return self.train_x.device

    @property
    def num_classes(self) -> int:
        return int(self.train_y.max()) + 1


def to_device(cached: CachedRaw, device: torch.device, val_size: int, split_seed: int) -> DeviceData:
    raw = cached.raw
    train_idx, val_idx = split_indices(raw.train_y, val_size, split_seed)
    train_u8 = raw.train_x[train_idx]
    # Statistics of the training split only: the validation set must stay unseen.
    mean, std = channel_stats(train_u8)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    def prepare(images: torch.Tensor) -> torch.Tensor:
        # Moved as uint8 (4x less to copy), normalised there; channels-last is faster for
        # LeNet's convolutions on CPU (measured) and on CUDA tensor cores.
        x = images.to(device).float().div_(255).sub_(mean_t).div_(std_t)
        return x.contiguous(memory_format=torch.channels_last)

    return DeviceData(
        train_x=prepare(train_u8),
        train_y=raw.train_y[train_idx].to(device),
        val_x=prepare(raw.train_x[val_idx]),
        val_y=raw.train_y[val_idx].to(device),
        test_x=prepare(raw.test_x),
        test_y=raw.test_y.to(device),
        mean=mean,
        std=std,
        checksum=cached.checksum,
        source=cached.source,
        val_size=val_size,
        split_seed=split_seed,
    )


# One copy per process and device, shared by every trial a worker runs.
_RESIDENT: dict[tuple[str, str, int, int, str], DeviceData] = {}


def load_dataset(
    data: str | os.PathLike[str] | None = None,
    device: torch.device | str = "cpu",
    val_size: int = DEFAULT_VAL_SIZE,
    split_seed: int = DEFAULT_SPLIT_SEED,
    cache_dir: Path | None = None,
) -> DeviceData:
    """Load CIFAR-10 from `data` (see lenet.sources) onto `device`, reusing a resident copy."""
    device = torch.device(device)
    path = resolve_data_path(data)
    cache_dir = cache_dir or default_cache_dir()
    key = (str(path), str(device), val_size, split_seed, str(cache_dir))
    if key not in _RESIDENT:
        _RESIDENT[key] = to_device(load_raw(data, cache_dir), device, val_size, split_seed)
    return _RESIDENT[key]


def release(device: torch.device | str) -> int:
    """Drop this process's resident copies on `device` (a parent that only coordinates
    workers frees the device for them); returns how many were dropped. Cached memory is given
    back by DevicePolicy.release_memory."""
    device = torch.device(device)
    keys = [k for k in _RESIDENT if torch.device(k[1]) == device]
    for k in keys:
        del _RESIDENT[k]
    return len(keys)


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, for a whole batch at once
    on its own device (one gather, no per-image Python)."""
    n, c, h, w = x.shape
    dev = x.device
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=generator.device).to(dev)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator, device=generator.device).to(dev)
    flip = torch.rand(n, 1, generator=generator, device=generator.device).to(dev) < 0.5
    cols_base = torch.arange(w, device=dev).unsqueeze(0)
    cols = torch.where(flip, (w - 1) - cols_base, cols_base) + dx
    rows = torch.arange(h, device=dev).unsqueeze(0) + dy
    out = padded[
        torch.arange(n, device=dev).view(n, 1, 1, 1),
        torch.arange(c, device=dev).view(1, c, 1, 1),
        rows.view(n, 1, h, 1),
        cols.view(n, 1, 1, w),
    ]
    return out.contiguous(memory_format=torch.channels_last)
