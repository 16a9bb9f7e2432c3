"""One training run outside a study (`lenet-search train`): the config from a file and flags,
train, test, summarise, save; and the summary it prints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lenet.checkpoint import save_checkpoint
from lenet.data import DEFAULT_SPLIT_SEED, DEFAULT_VAL_SIZE, DeviceData, load_dataset
from lenet.device import resolve_device
from lenet.errors import InputError
from lenet.clock import StepClock, seconds_of
from lenet.train import EvalRecord, TrainConfig, TrainResult, crossing, evaluate, train
from search.configfile import load_config_file
from search.export import write_json
from search.provenance import library_versions, now_text, stamp
from search.text import range_text

DEFAULT_RUNS_DIR = Path("studies") / "runs"


@dataclass(frozen=True)
class TrainRequest:
    """What `lenet-search train` was asked for."""

    overrides: Mapping[str, Any]  # TrainConfig fields given as flags (None: not given)
    config_file: Path | None = None
    data: str | None = None
    device: str = "auto"
    threads: int | None = None
    val_size: int = DEFAULT_VAL_SIZE
    target: float | None = None  # None: the --config export's target, if any
    stop_at_target: bool = False
    out_dir: Path | None = None  # None: DEFAULT_RUNS_DIR/<timestamp>, unless write is False
    write: bool = True


@dataclass(frozen=True)
class Reported:
    """What an exported trial reported, to compare a retrain with."""

    seconds_to_target: float | None  # in its study's clock
    measured_seconds_to_target: float | None
    clock: StepClock | None  # its study's step clock, to price the retrain's steps in
    confirmation: dict[str, Any] | None = None  # its times on the confirmation's seeds (search.export)


@dataclass
class RunOutcome:
    result: TrainResult
    metrics: dict[str, Any]
    reported: Reported | None = None
    paths: dict[str, Path] | None = None


def resolve_config(request: TrainRequest) -> tuple[TrainConfig, float | None, Reported | None]:
    """(config, target, what the export reported): the --config file's values, overridden by flags."""
    values: dict[str, Any] = {}
    target, reported = request.target, None
    if request.config_file is not None:
        loaded = load_config_file(request.config_file)
        values = loaded.config.to_dict()
        target = target if target is not None else loaded.target
        metrics = loaded.document.get("metrics") or {}
        table = loaded.document.get("clock")
        reported = Reported(metrics.get("seconds_to_target"), metrics.get("measured_seconds_to_target"),
                            StepClock.from_dict(table) if table else None, loaded.document.get("confirmation"))  # fmt: skip
    values.update({k: v for k, v in request.overrides.items() if v is not None})
    config = TrainConfig.from_dict(values)
    if request.stop_at_target and target is None:
        raise InputError("--stop-at-target needs a target: --target, or a --config export that has one")
    return config, target, reported


def run_training(
    request: TrainRequest,
    on_start: Callable[[TrainConfig], Any] | None = None,
    on_eval: Callable[[EvalRecord], Any] | None = None,
) -> RunOutcome:
    """Resolve the config, load the data, train, test and (unless `write` is False) save.
    `on_start(config)` is called once the config is known and the data loaded."""
    config, target, reported = resolve_config(request)
    dataset = load_dataset(request.data, resolve_device(request.device), val_size=request.val_size,
                           split_seed=DEFAULT_SPLIT_SEED)  # fmt: skip
    if on_start is not None:
        on_start(config)
    run = train_and_test(config, dataset, target=target, stop_at_target=request.stop_at_target,
                         threads=request.threads, on_eval=on_eval)  # fmt: skip
    run.reported = reported
    if reported is not None and reported.clock is not None and target is not None:
        cross = crossing(run.result.history, target)
        clock = reported.clock
        run.metrics["clock_seconds_to_target"] = (
            cross.interpolate(lambda r: seconds_of(clock, config, r)) if cross else None
        )
    if request.write or request.out_dir is not None:
        run.paths = write_run(request.out_dir or DEFAULT_RUNS_DIR / stamp(), run, dataset)
    return run


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

    def callback(record: EvalRecord) -> str | None:
        if on_eval is not None:
            on_eval(record)
        if stop_at_target and target is not None and record.val_accuracy >= target:
            return f"reached the target {target:.4f} at epoch {record.epoch:.4g}"
        return None

    started = now_text()
    result = train(config, data, on_eval=callback, threads=threads)
    test_loss, test_accuracy = evaluate(result.model, data.test_x, data.test_y)
    summary = result.summary(target)
    metrics: dict[str, Any] = {
        "test_accuracy": test_accuracy,
        "test_loss": test_loss,
        "best_val_accuracy": summary.best_val_accuracy,
        "final_val_accuracy": summary.final_val_accuracy,
        "train_seconds": summary.train_seconds,
        "wall_seconds": summary.wall_seconds,
        "epochs": summary.epochs,
        "outcome": result.outcome,
        "reason": result.reason,
        "target": target,
        "seconds_to_target": summary.seconds_to_target,
        "epochs_to_target": summary.epochs_to_target,
        "images_to_target": summary.images_to_target,
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


def summary_lines(run: RunOutcome) -> list[str]:
    """What `train` prints after the run."""
    m = run.metrics
    lines = [
        f"started {m['started']}, finished {m['finished']} on {m['device']}"
        + (f" ({m['threads']} threads)" if m["threads"] else ""),
        f"outcome: {m['outcome']} ({m['reason']})",
        f"epochs: {m['epochs']:.4g}, training time: {m['train_seconds']:.1f} s "
        f"(wall {m['wall_seconds']:.1f} s with evaluation)",
        f"validation accuracy: best {m['best_val_accuracy']:.4f}, final {m['final_val_accuracy']:.4f}",
    ]
    target = m["target"]
    if target is not None:
        if m["seconds_to_target"] is None:
            lines.append(f"target {target:.4f}: not reached")
        else:
            lines.append(f"target {target:.4f}: reached after {m['seconds_to_target']:.1f} s of training "
                         f"(epoch {m['epochs_to_target']:.4g})")  # fmt: skip
            lines += _comparison(run)
    lines.append(f"test accuracy: {m['test_accuracy']:.4f} (loss {m['test_loss']:.4f})")
    lines += [f"{kind}: {path}" for kind, path in (run.paths or {}).items()]
    return lines


def _comparison(run: RunOutcome) -> list[str]:
    """How the retrain compares with the exported trial: in its study's clock when the export
    carries one (the same steps cost the same there), else in measured seconds."""
    r, m = run.reported, run.metrics
    if r is None:
        return []
    clock_s = m.get("clock_seconds_to_target")
    if clock_s is not None:
        lines = [f"  in the study's clock: {clock_s:.1f} s"]
        if r.seconds_to_target:
            change = 100 * (clock_s / r.seconds_to_target - 1)
            lines[0] += f"; the exported trial reported {r.seconds_to_target:.1f} s ({change:+.0f} % here)"
        c = r.confirmation
        if c and c.get("median") is not None and c.get("median_exact", c.get("exact")):
            # The range's top is open when its slowest seed stopped at a cap or never reached the
            # target (null): nothing is above it then.
            closed = c["exact"] and c["high"] is not None
            where = ("below" if clock_s < c["low"] else "above" if closed and clock_s > c["high"] else "within")
            lines.append(f"  confirmed on seeds {', '.join(map(str, c['seeds']))}: median {c['median']:.1f} s, "
                         f"{range_text(c['low'], c['high'], c['exact'])}; this retrain is {where} that range "
                         f"({100 * (clock_s / c['median'] - 1):+.0f} % against the median)")  # fmt: skip
        return lines
    measured = r.measured_seconds_to_target or (r.seconds_to_target if r.clock is None else None)
    if measured:
        change = 100 * (m["seconds_to_target"] / measured - 1)
        return [f"  the exported trial reported {measured:.1f} s ({change:+.0f} % here)"]
    return []
