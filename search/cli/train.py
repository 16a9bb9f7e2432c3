"""`lenet-search train` and `bench`: one training run, and the engine's epoch time."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from search.cli.options import (
    data_option,
    device_option,
    int_list,
    threads_option,
    train_config_options,
    val_size_option,
)
from search.retrain.training import DEFAULT_RUNS_DIR


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Start from this config (an `export` file or a JSON/TOML mapping of the fields below); flags override it.",
)
@train_config_options
@data_option
@device_option
@threads_option
@val_size_option
@click.option(
    "--target",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Validation accuracy to time (seconds to target). [default: the --config export's target]",
)
@click.option(
    "--stop-at-target",
    is_flag=True,
    help="End training at the first evaluation at the target, as a study's trial does.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=f"Folder for metrics.json and model.pt. [default: {DEFAULT_RUNS_DIR}/<timestamp>]",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of writing them (unless --out is given)."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(as_json: bool, quiet: bool, **request: Any) -> None:
    """Train LeNet-5 once, evaluate it on the test set, and save metrics and the model.

    \b
    Example:
      lenet-search train --data ../shared/data/cifar10-images.tar.gz --batch-size 128 \\
          --lr 0.05 --momentum 0.9 --step-size 4 --gamma 0.3 --epochs 10
    """
    from search.retrain.training import TrainRequest, run_training
    from search.views.text import train_summary

    overrides = {f.name: request.pop(f.name) for f in fields(TrainConfig)}
    bar = None if quiet or as_json else _EpochBar()
    try:
        report = run_training(
            TrainRequest(overrides=overrides, write=not as_json, **request),
            on_start=bar.start if bar else None,
            on_eval=bar.on_eval if bar else None,
        )
    finally:
        if bar is not None:
            bar.close()
    click.echo(json.dumps(report.metrics.to_dict(), indent=2) if as_json else "\n".join(train_summary(report)))


class _EpochBar:
    """A tqdm bar over the run's epochs, with loss and accuracies."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, config: TrainConfig) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=config.max_epochs,
            unit="epoch",
            desc="train",
            file=sys.stderr,
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.4g}/{total} [{elapsed}<{remaining}{postfix}]",
        )

    def on_eval(self, record: EvalRecord) -> None:
        self.bar.update(record.epoch - self.bar.n)
        self.bar.set_postfix(
            loss=f"{record.train_loss:.3f}",
            train=f"{record.train_accuracy:.3f}",
            val=f"{record.val_accuracy:.3f}",
            lr=f"{record.lr:.3g}",
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@click.command()
@data_option
@device_option
@threads_option
@val_size_option
@click.option(
    "--batch-sizes",
    default="32,128,256,512,2048",
    show_default=True,
    callback=int_list,
    help="Batch sizes to time the engine at.",
)
@click.option(
    "--naive-batch-sizes",
    default=None,
    callback=int_list,
    help="Batch sizes to time the naive DataLoader pipeline at. [default: --batch-sizes]",
)
@click.option("--no-naive", is_flag=True, help="Skip the naive pipeline.")
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Timed epochs per row (median reported; the engine also runs one warm-up epoch).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="DataLoader worker processes of the naive pipeline.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def bench(
    data: str | None,
    device: str,
    threads: int | None,
    val_size: int,
    batch_sizes: list[int],
    naive_batch_sizes: list[int] | None,
    no_naive: bool,
    epochs: int,
    workers: int,
    as_json: bool,
) -> None:
    """Time training epochs of the engine against the naive torchvision DataLoader pipeline,
    side by side in one run, per batch size.

    \b
    Example:
      lenet-search bench --data ../shared/data/cifar10-images.tar.gz --batch-sizes 32,128,512
    """
    from lenet.bench import bench as run_bench

    report = run_bench(
        data,
        device,
        batch_sizes,
        epochs=epochs,
        naive_batch_sizes=[] if no_naive else naive_batch_sizes,
        threads=threads,
        val_size=val_size,
        num_workers=workers,
    )
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else "\n".join(report.table()))
