"""Preparing an `optimize` run: storage, data, target and the study, checked before any
trial starts, so that refused input writes nothing to the study."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.storages import RDBStorage

from lenet.data import DEFAULT_VAL_SIZE, load_dataset
from lenet.device import accelerator_count, cpu_count, hardware, resolve_device
from lenet.train import TrainConfig
from search.algorithms import make_pruner
from search.provenance import now_text
from search.record import StudyRecord
from search.space import load_space
from search.storage import close_storage, make_storage
from search.study import DEFAULT_STUDY, StudyError, open_study, stored_record
from search.target import DEFAULT_TARGET, calibrate
from search.workers import RunSpec


@dataclass(frozen=True)
class OptimizeRequest:
    """What `lenet-search optimize` was asked for."""

    n_trials: int
    study_name: str = DEFAULT_STUDY
    storage_url: str = "sqlite:///studies/lenet.db"
    target_text: str | None = None  # a number, 'auto', or None: the stored target, else the default
    space_file: Path | None = None
    max_epochs: int | None = None
    evals_per_epoch: int | None = None
    sampler: str = "tpe"
    pruner: str = "saturation"
    seed: int = 0
    data: str | None = None
    device: str = "auto"
    jobs: int = 1
    timeout: float | None = None
    val_size: int = DEFAULT_VAL_SIZE
    baseline: bool = True


@dataclass(frozen=True)
class Prepared:
    request: OptimizeRequest
    spec: RunSpec
    study: optuna.Study  # this process's, with the sampler and pruner built once
    storage: RDBStorage  # this process's only storage; close it (search.storage.close_storage) when done
    record: StudyRecord  # as stored
    notes: list[str]  # warnings for the user (another thread count or data set)


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


def prepare(request: OptimizeRequest, on_calibrate: Callable[[], None] | None = None) -> Prepared:
    r = request
    target = parse_target(r.target_text)
    space = load_space(r.space_file, r.max_epochs, r.evals_per_epoch)
    dev = resolve_device(r.device)
    threads = threads_per_worker(r.jobs) if dev.type == "cpu" else 1
    dataset = load_dataset(r.data, dev, val_size=r.val_size)  # bad data fails before a database is created
    storage = make_storage(r.storage_url)
    try:
        return _open(r, target, space, dev, threads, dataset, storage, on_calibrate)
    except BaseException:
        close_storage(storage)
        raise


def _open(r, target, space, dev, threads, dataset, storage, on_calibrate) -> Prepared:
    stored = stored_record(storage, r.study_name)
    explicit = isinstance(target, float)
    if target == "auto":
        if stored is not None:
            value, source, explicit = stored.target, "stored", False  # calibrated when it was created
        else:
            if on_calibrate:
                on_calibrate()
            cal = calibrate(dataset, threads=threads)
            value, source = cal.target, cal.note
    elif explicit:
        value, source = target, "given with --target"
    else:
        value = stored.target if stored is not None else DEFAULT_TARGET
        source = "stored" if stored is not None else "default: measured saturation plateau less 1.5 points"

    wanted = StudyRecord(
        target=value, target_source=source, space=space.to_dict(), device=str(dev), threads=threads,
        data_checksum=dataset.checksum, seed=r.seed, created=now_text(),
        baseline=space.baseline_params(TrainConfig()) if r.baseline else None, hardware=hardware(dev), jobs=r.jobs,
    )  # fmt: skip
    study, notes = open_study(
        r.study_name, storage, wanted, sampler=r.sampler, seed=r.seed, pruner=make_pruner(r.pruner, value),
        explicit_target=explicit,
    )  # fmt: skip
    spec = RunSpec(
        study_name=r.study_name, storage_url=r.storage_url, n_trials=r.n_trials, target=value, space=space,
        sampler=r.sampler, pruner=r.pruner, seed=r.seed, data=r.data, device=str(dev), val_size=r.val_size,
        threads=threads if dev.type == "cpu" else None, timeout=r.timeout,
    )  # fmt: skip
    return Prepared(request=r, spec=spec, study=study, storage=storage, record=stored or wanted,
                    notes=notes + shared_device_notes(dev, r.jobs))  # fmt: skip


def shared_device_notes(device: torch.device, jobs: int) -> list[str]:
    """A warning when several workers would share one accelerator."""
    if device.type == "cpu" or jobs == 1:
        return []
    cards = 1 if device.index is not None else accelerator_count(device.type)
    if jobs <= cards:
        return []
    return [f"{jobs} workers share {cards} {device.type} device(s): trials that run side by side on one device "
            "slow each other down, so their seconds are not comparable with a lone trial's"]  # fmt: skip
