"""One training run outside a study (`lenet-search train`): the config from a file and flags,
train, test, measure against the target, save."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lenet.checkpoint import save_checkpoint
from lenet.clock import StepClock
from lenet.config import TrainConfig, option
from lenet.curve import EvalRecord
from lenet.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, DeviceData, load_dataset
from lenet.device import resolve_device
from lenet.errors import blame
from lenet.step import evaluate
from lenet.train import TrainResult, train
from search.clock.pricing import time_to_target
from search.errors import RequestError
from search.records.export import ExportDocument
from search.records.files import write_json
from search.records.metrics import RunMetrics
from search.records.provenance import library_versions, now_text, stamp
from search.retrain.configfile import load_config_file

DEFAULT_RUNS_DIR = Path("studies") / "runs"


@dataclass(frozen=True)
class TrainRequest:
    """What `lenet-search train` was asked for (besides the TrainConfig fields, `overrides`)."""

    overrides: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields given as flags (None: not given)
    config_file: Path | None = option(
        None,
        "Start from this config (an `export` file or a JSON/TOML mapping of the fields below); flags override it.",
        flag="--config",
    )
    data: str | None = option(None, "CIFAR-10 source", shared=True)
    device: str = option("auto", "the training device", shared=True)
    threads: int | None = option(None, "torch CPU threads", shared=True)
    val_size: int = option(DEFAULT_VAL_SIZE, "validation images held out", shared=True)
    target: float | None = option(
        None,
        "Validation accuracy to time (seconds to target). [default: the --config export's target]",
        above=0.0,
        below=1.0,
    )
    stop_at_target: bool = option(
        False, "End training at the first evaluation at the target, as a study's trial does.", flag_only=True
    )
    out_dir: Path | None = option(
        None,
        f"Folder for metrics.json and model.pt. [default: {DEFAULT_RUNS_DIR}/<timestamp>]",
        flag="--out",
        folder=True,
    )
    write: bool = True  # False: keep the metrics in memory (unless out_dir is given)


@dataclass(frozen=True)
class TrainingReport:
    """A finished `train` run: what it trained, its metrics, the export it retrained (if any),
    and the files it wrote."""

    result: TrainResult
    metrics: RunMetrics
    export: ExportDocument | None = None
    paths: dict[str, Path] | None = None

    @property
    def export_clock(self) -> StepClock | None:
        """The retrained export's step clock, in which the retrain is priced."""
        return StepClock.from_dict(self.export.clock) if self.export is not None and self.export.clock else None


def resolve_config(request: TrainRequest) -> tuple[TrainConfig, float | None, ExportDocument | None]:
    """(config, target, the export retrained): the --config file's values, overridden by flags."""
    values: dict[str, Any] = {}
    target, export = request.target, None
    if request.config_file is not None:
        with blame("config_file"):
            loaded = load_config_file(request.config_file)
        values = loaded.config.to_dict()
        target = target if target is not None else loaded.target
        export = loaded.export
    values.update({k: v for k, v in request.overrides.items() if v is not None})
    config = TrainConfig.from_dict(values)
    if request.stop_at_target and target is None:
        raise RequestError(
            "stopping at the target needs a target: give one, or a config export that has one", subject="target"
        )
    return config, target, export


def run_training(
    request: TrainRequest,
    on_start: Callable[[TrainConfig], Any] | None = None,
    on_eval: Callable[[EvalRecord], Any] | None = None,
) -> TrainingReport:
    """Resolve the config, load the data, train, test and (unless `write` is False) save.
    `on_start(config)` is called once the config is known and the data loaded."""
    config, target, export = resolve_config(request)
    with blame("device"):
        device = resolve_device(request.device)
    with blame("data"):
        dataset = load_dataset(request.data, device, val_size=request.val_size, split_seed=DEFAULT_SPLIT_SEED)
    if on_start is not None:
        on_start(config)
    report = train_and_test(
        config, dataset, target=target, stop_at_target=request.stop_at_target, threads=request.threads, on_eval=on_eval
    )
    report = replace(report, export=export)
    clock = report.export_clock
    if clock is not None and target is not None:
        reached = time_to_target(report.result.history, target, config, clock)
        report = replace(
            report, metrics=replace(report.metrics, clock_seconds_to_target=reached.clock_seconds if reached else None)
        )
    if request.write or request.out_dir is not None:
        report = replace(report, paths=write_run(request.out_dir or DEFAULT_RUNS_DIR / stamp(), report, dataset))
    return report


def train_and_test(
    config: TrainConfig,
    data: DeviceData,
    *,
    target: float | None = None,
    stop_at_target: bool = False,
    threads: int | None = None,
    on_eval: Callable[[EvalRecord], Any] | None = None,
) -> TrainingReport:
    """Train `config`, evaluate the final model on the test set and gather the metrics.

    With `stop_at_target`, training ends at the first evaluation at the target, as a trial
    of the study did."""

    def callback(record: EvalRecord) -> str | None:
        if on_eval is not None:
            on_eval(record)
        if stop_at_target and target is not None and record.val_accuracy >= target:
            return f"reached the target {target:.4f} at epoch {record.epoch:.4g}"
        return None

    started = now_text()
    result = train(config, data, on_eval=callback, threads=threads)
    test_loss, test_accuracy = evaluate(result.model, data.test_x, data.test_y)
    reached = time_to_target(result.history, target, config, None) if target is not None else None
    metrics = RunMetrics(
        test_accuracy=test_accuracy,
        test_loss=test_loss,
        best_val_accuracy=result.best_val_accuracy,
        final_val_accuracy=result.final_val_accuracy,
        measured_seconds=result.train_seconds,
        wall_seconds=result.wall_seconds,
        epochs=result.epochs,
        status=result.status,
        reason=result.reason,
        target=target,
        measured_seconds_to_target=reached.measured_seconds if reached else None,
        epochs_to_target=reached.epochs if reached else None,
        images_to_target=reached.images if reached else None,
        config=config.to_dict(),
        device=result.device,
        threads=result.threads,
        data={
            "source": data.source,
            "checksum": data.checksum,
            "val_size": data.val_size,
            "split_seed": data.split_seed,
        },
        started=started,
        finished=now_text(),
        versions=library_versions(),
        history=[r.to_dict() for r in result.history],
    )
    return TrainingReport(result=result, metrics=metrics)


def write_run(out_dir: Path, report: TrainingReport, data: DeviceData) -> dict[str, Path]:
    """Write metrics.json, model.pt (weights, config, normalisation) and curve.png into `out_dir`."""
    from search.views.plots import Curve, plot_curves

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": out_dir / "metrics.json", "checkpoint": out_dir / "model.pt", "curve": out_dir / "curve.png"}
    save_checkpoint(paths["checkpoint"], report.result, data)
    write_json(paths["metrics"], report.metrics.to_dict())
    c = report.result.config
    title = f"bs {c.batch_size}, lr {c.lr:.3g}, StepLR {c.step_size} x {c.gamma:.3g}, momentum {c.momentum:.3g}"
    plot_curves(
        [Curve.from_records("run", report.result.history)],
        report.metrics.target,
        paths["curve"],
        title,
        show_train=True,
    )
    return paths
