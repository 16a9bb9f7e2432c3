"""`lenet-search train` and `bench`: one training run, and the engine's epoch time."""

from __future__ import annotations

import json
import sys
from dataclasses import fields
from typing import Any

import click

from lenet.bench import BenchRequest
from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from search.cli.options import request_options, train_config_options
from search.retrain.training import TrainRequest


@click.command()
@request_options(TrainRequest)
@train_config_options
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
    from search.retrain.training import run_training
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
@request_options(BenchRequest)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def bench(as_json: bool, **request: Any) -> None:
    """Time training epochs of the engine against the naive torchvision DataLoader pipeline,
    side by side in one run, per batch size.

    \b
    Example:
      lenet-search bench --data ../shared/data/cifar10-images.tar.gz --batch-sizes 32,128,512
    """
    from lenet.bench import bench as run_bench

    report = run_bench(BenchRequest(**request))
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else "\n".join(report.table()))
