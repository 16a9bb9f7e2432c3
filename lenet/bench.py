"""Epoch time of the engine against the naive DataLoader pipeline, per batch size
(the seed journal's experiment e0008: "best scale for fetching data on the given system")."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass

from lenet.config import TrainConfig, option
from lenet.data import DEFAULT_VAL_SIZE, DeviceData, load_dataset, load_raw, split_indices
from lenet.device import policy_for, resolve_device, set_threads
from lenet.model import LeNet5, training_flops_per_image
from lenet.naive import NaiveCIFAR10, time_naive_epochs
from lenet.train import train


@dataclass(frozen=True)
class BenchRow:
    pipeline: str  # "engine" or "naive"
    batch_size: int
    epoch_seconds: float  # median over the timed epochs
    images_per_second: float
    gflops: float  # achieved training GFLOP/s at LeNet-5's FLOPs per image
    speedup: float | None  # naive epoch time / this epoch time, at the same batch size
    epoch_times: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def _row(pipeline: str, batch_size: int, times: list[float], images: int) -> BenchRow:
    median = statistics.median(times)
    flops = training_flops_per_image(LeNet5())
    return BenchRow(pipeline, batch_size, median, images / median, images * flops / median / 1e9, None, times)


def engine_epoch_times(data: DeviceData, batch_size: int, epochs: int, threads: int | None) -> list[float]:
    """Times of `epochs` epochs after one warm-up epoch, from the engine's own history."""
    config = TrainConfig(batch_size=batch_size, max_epochs=epochs + 1, lr=0.01, step_size=100, gamma=1.0)
    history = train(config, data, threads=threads).history
    seconds = [r.train_seconds for r in history]
    return [b - a for a, b in zip(seconds, seconds[1:])]


def run_benchmark(
    data: DeviceData,
    data_path: str | None,
    batch_sizes: list[int],
    epochs: int = 2,
    naive_batch_sizes: list[int] | None = None,
    threads: int | None = None,
    num_workers: int = 2,
) -> list[BenchRow]:
    """Engine rows for every batch size, naive rows for `naive_batch_sizes` (default: all)."""
    naive_batch_sizes = batch_sizes if naive_batch_sizes is None else naive_batch_sizes
    n = len(data.train_x)
    rows: list[BenchRow] = []
    naive_set = None
    # Interleaved per batch size, so that drift in the machine's load hits both pipelines alike.
    for bs in sorted(set(batch_sizes) | set(naive_batch_sizes)):
        if bs in batch_sizes:
            rows.append(_row("engine", bs, engine_epoch_times(data, bs, epochs, threads), n))
        if bs in naive_batch_sizes:
            if naive_set is None:
                raw = load_raw(data_path).raw
                train_idx, _ = split_indices(raw.train_y, data.val_size, data.split_seed)
                naive_set = NaiveCIFAR10(raw.train_x[train_idx], raw.train_y[train_idx], data.mean, data.std)
            # On the engine's device, so that the speed-up compares pipelines, not devices.
            times = time_naive_epochs(naive_set, bs, epochs, num_workers, policy=policy_for(data.device))
            rows.append(_row("naive", bs, times, n))
    naive_by_bs = {r.batch_size: r.epoch_seconds for r in rows if r.pipeline == "naive"}
    return [
        BenchRow(**{**asdict(r), "speedup": naive_by_bs[r.batch_size] / r.epoch_seconds})
        if r.batch_size in naive_by_bs
        else r
        for r in rows
    ]


@dataclass(frozen=True)
class BenchReport:
    device: str
    threads: int
    train_images: int
    rows: list[BenchRow]

    def table(self) -> list[str]:
        """The report as `lenet-search bench` prints it."""
        lines = [
            f"device {self.device}, {self.threads} torch threads, {self.train_images} training images per epoch",
            f"{'pipeline':<9}{'batch':>7}{'s/epoch':>10}{'images/s':>11}{'GFLOP/s':>9}{'speed-up':>10}",
        ]
        for r in self.rows:
            speedup = "-" if r.speedup is None else f"{r.speedup:.1f}x"
            lines.append(
                f"{r.pipeline:<9}{r.batch_size:>7}{r.epoch_seconds:>10.2f}{r.images_per_second:>11.0f}"
                f"{r.gflops:>9.1f}{speedup:>10}"
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "device": self.device,
            "threads": self.threads,
            "train_images": self.train_images,
            "rows": [r.to_dict() for r in self.rows],
        }


@dataclass(frozen=True)
class BenchRequest:
    """What `lenet-search bench` was asked for."""

    data: str | None = option(None, "CIFAR-10 source", shared=True)
    device: str = option("auto", "the training device", shared=True)
    threads: int | None = option(None, "torch CPU threads", shared=True)
    val_size: int = option(DEFAULT_VAL_SIZE, "validation images held out", shared=True)
    batch_sizes: tuple[int, ...] = option((32, 128, 256, 512, 2048), "Batch sizes to time the engine at.")
    naive_batch_sizes: tuple[int, ...] | None = option(
        None, "Batch sizes to time the naive DataLoader pipeline at. [default: --batch-sizes]"
    )
    naive: bool = option(True, "Time the naive pipeline too.")
    epochs: int = option(2, "Timed epochs per row (median reported; the engine also runs one warm-up epoch).", min=1)
    num_workers: int = option(2, "DataLoader worker processes of the naive pipeline.", flag="--workers", min=0)


def bench(request: BenchRequest) -> BenchReport:
    """`lenet-search bench`: load the data onto the device and time both pipelines."""
    r = request
    dataset = load_dataset(r.data, resolve_device(r.device), val_size=r.val_size)
    threads_used = set_threads(r.threads)
    naive = (list(r.naive_batch_sizes) if r.naive_batch_sizes is not None else None) if r.naive else []
    rows = run_benchmark(
        dataset,
        r.data,
        list(r.batch_sizes),
        epochs=r.epochs,
        naive_batch_sizes=naive,
        threads=r.threads,
        num_workers=r.num_workers,
    )
    return BenchReport(str(dataset.device), threads_used, len(dataset.train_x), rows)
