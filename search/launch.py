"""Preparing an `optimize` run: storage, data, target and the study, checked before any
trial starts, so that refused input writes nothing to the study."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from lenet.data import DEFAULT_VAL_SIZE, load_dataset
from lenet.device import cpu_count, resolve_device
from lenet.train import TrainConfig
from search.optimize import RunSpec
from search.space import load_space
from search.study import StudyError, StudySettings, make_pruner, make_sampler, make_storage, open_study, stored_target
from search.target import DEFAULT_TARGET, calibrate
from search.trials import best_completed


@dataclass(frozen=True)
class Prepared:
    spec: RunSpec
    study: optuna.Study
    storage: RDBStorage  # close it (search.study.close_storage) when done
    notes: list[str]
    threads: int


def threads_per_worker(jobs: int) -> int:
    """Cores split evenly between workers: oversubscribed threads run 20-190x slower."""
    return max(1, cpu_count() // jobs)


def parse_target(text: str | None) -> float | str | None:
    if text is None or text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise StudyError(f"--target must be a number in (0, 1) or 'auto', got {text!r}") from None
    if not (0 < value < 1 and math.isfinite(value)):
        raise StudyError(f"--target must be a validation accuracy in (0, 1), got {text}")
    return value


def prepare(
    *,
    study_name: str,
    storage_url: str,
    n_trials: int,
    target_text: str | None,
    space_file: Path | None,
    max_epochs: int | None,
    evals_per_epoch: int | None,
    sampler: str,
    pruner: str,
    seed: int,
    data: str | None,
    device: str,
    jobs: int,
    timeout: float | None,
    val_size: int = DEFAULT_VAL_SIZE,
    baseline: bool = True,
    on_calibrate=None,
) -> Prepared:
    target = parse_target(target_text)
    space = load_space(space_file, max_epochs, evals_per_epoch)
    sampler_obj = make_sampler(sampler, seed)  # unknown names fail here, before anything is written
    dev = resolve_device(device)
    threads = threads_per_worker(jobs) if dev.type == "cpu" else 1
    dataset = load_dataset(data, dev, val_size=val_size)  # bad data fails before a database is created
    storage = make_storage(storage_url)

    existing = stored_target(storage, study_name)
    explicit = isinstance(target, float)
    if target == "auto":
        if existing is not None:
            value, source, explicit = existing, "stored", False  # calibrated when it was created
        else:
            if on_calibrate:
                on_calibrate()
            cal = calibrate(dataset, threads=threads)
            value, source = cal.target, cal.note
    elif explicit:
        value, source = target, "given with --target"
    else:
        value = existing if existing is not None else DEFAULT_TARGET
        source = "stored" if existing is not None else "default: measured saturation plateau less 1.5 points"

    settings = StudySettings(
        target=value, target_source=source, space=space, device=str(dev),
        threads=threads, data_checksum=dataset.checksum, seed=seed,
        baseline=space.baseline_params(TrainConfig()) if baseline else None,
    )  # fmt: skip
    study, notes = open_study(
        study_name, storage, settings, sampler_obj, make_pruner(pruner, value), explicit_target=explicit
    )
    spec = RunSpec(
        study_name=study_name, storage_url=storage_url, n_trials=n_trials, target=value, space=space,
        sampler=sampler, pruner=pruner, seed=seed, data=data, device=str(dev), val_size=val_size,
        threads=threads if dev.type == "cpu" else None, timeout=timeout,
    )  # fmt: skip
    return Prepared(spec=spec, study=study, storage=storage, notes=notes, threads=threads)


def best_summary(study: optuna.Study) -> dict | None:
    """The best trial's schedule and measures, or None when no trial reached the target."""
    best = best_completed(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if best is None:
        return None
    return {
        "number": best.number,
        "seconds_to_target": best.value,
        "params": best.params,
        "config": best.user_attrs.get("config", {}),
        "epochs_to_target": best.user_attrs.get("epochs_to_target"),
        "best_val_accuracy": best.user_attrs.get("best_val_accuracy"),
    }
