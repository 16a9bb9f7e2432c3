"""One training run outside a study (`lenet-search train`): train, test, summarise, save."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lenet.checkpoint import save_checkpoint
from lenet.data import DeviceData
from lenet.train import EvalRecord, TrainConfig, TrainResult, evaluate, train
from search.export import write_json
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
    stop_at_target: bool = False,
    threads: int | None = None,
    on_eval: Callable[[EvalRecord], Any] | None = None,
) -> RunOutcome:
    """Train `config`, evaluate the final model on the test set and gather the metrics.

    With `stop_at_target`, training ends at the first evaluation at the target, as a trial
    of the study did."""
    if stop_at_target and target is None:
        raise ValueError("--stop-at-target needs a target (--target, or a --config export)")

    def callback(record: EvalRecord) -> str | None:
        if on_eval is not None:
            on_eval(record)
        if stop_at_target and record.val_accuracy >= target:
            return f"reached the target {target:.4f} at epoch {record.epoch:.4g}"
        return None

    started = now_text()
    result = train(config, data, on_eval=callback, threads=threads)
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
    """Write metrics.json, model.pt (weights, config, normalisation) and curve.png into `out_dir`."""
    from search.plots import Curve, plot_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json", "checkpoint": out_dir / "model.pt", "curve": out_dir / "curve.png"}
    save_checkpoint(paths["checkpoint"], run.result, data)
    write_json(paths["metrics"], run.metrics)
    c = run.metrics["config"]
    title = f"bs {c['batch_size']}, lr {c['lr']:.3g}, StepLR {c['step_size']} x {c['gamma']:.3g}, momentum {c['momentum']:.3g}"
    plot_curves([Curve.from_points("run", run.metrics["history"])], run.metrics["target"], paths["curve"], title,
                show_train=True)  # fmt: skip
    return paths
