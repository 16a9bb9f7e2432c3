"""One training run outside a study (`lenet-search train`): train, test, summarise, save."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lenet.checkpoint import save_checkpoint
from lenet.data import DeviceData
from lenet.train import EvalRecord, TrainConfig, TrainResult, evaluate, train
from search.provenance import library_versions, now_text


@dataclass
class RunOutcome:
    result: TrainResult
    metrics: dict[str, Any]


def train_and_test(
    config: TrainConfig,
    data: DeviceData,
    *,
    target: float | None = None,
    threads: int | None = None,
    on_eval: Callable[[EvalRecord], Any] | None = None,
) -> RunOutcome:
    """Train `config`, evaluate the final model on the test set and gather the metrics."""
    started = now_text()
    result = train(config, data, on_eval=on_eval, threads=threads)
    test_loss, test_accuracy = evaluate(result.model, data.test_x, data.test_y)
    reached = result.first_reaching(target) if target is not None else None
    last = result.history[-1] if result.history else None
    metrics: dict[str, Any] = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_val_accuracy": result.best_val_accuracy,
        "final_val_accuracy": last.val_accuracy if last else None,
        "train_seconds": result.train_seconds,
        "wall_seconds": last.wall_seconds if last else 0.0,
        "epochs": last.epoch if last else 0,
        "outcome": result.outcome,
        "reason": result.reason,
        "target": target,
        "seconds_to_target": reached.train_seconds if reached else None,
        "epochs_to_target": reached.epoch if reached else None,
        "images_to_target": reached.images if reached else None,
        "config": config.to_dict(),
        "device": result.device,
        "threads": result.threads,
        "data": {
            "source": data.source,
            "checksum": data.checksum,
            "val_size": data.val_size,
            "split_seed": data.split_seed,
        },
        "started": started,
        "finished": now_text(),
        "versions": library_versions(),
        "history": [r.to_dict() for r in result.history],
    }
    return RunOutcome(result=result, metrics=metrics)


def write_run(out_dir: Path, run: RunOutcome, data: DeviceData) -> dict[str, Path]:
    """Write metrics.json and model.pt (weights, config, normalisation) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json", "checkpoint": out_dir / "model.pt"}
    save_checkpoint(paths["checkpoint"], run.result, data)
    paths["metrics"].write_text(json.dumps(run.metrics, indent=2) + "\n")
    return paths
