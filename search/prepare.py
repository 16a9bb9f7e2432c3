"""Preparing an `optimize` run: storage, data, target and the study, checked before any
trial starts, so that refused input writes nothing to the study."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.distributions import CategoricalDistribution
from optuna.storages import RDBStorage

from lenet.clock import CLOCK_FORMAT, StepClock, calibrate_clock
from lenet.data import DEFAULT_VAL_SIZE, DeviceData, load_dataset
from lenet.errors import InputError
from lenet.device import accelerator_count, cpu_count, hardware, resolve_device
from lenet.train import TrainConfig
from search.algorithms import make_pruner
from search.provenance import now_text
from search.record import StudyRecord
from search.configfile import read_document
from search.confirm import DEFAULT_SEEDS, DEFAULT_TOP
from search.space import Fixed, SearchSpace, load_space
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
    clock: str | None = None  # calibrated | measured; None: the study's, else calibrated
    clock_from: str | None = None  # a step-clock JSON file, an export, or study:NAME in this storage
    confirm_top: int = DEFAULT_TOP  # candidates raced on fresh seeds after the search (0: none)
    confirm_seeds: int = DEFAULT_SEEDS


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


def prepare(
    request: OptimizeRequest,
    on_calibrate: Callable[[], None] | None = None,
    on_clock: Callable[[], None] | None = None,
) -> Prepared:
    """Check the request and open its study. `on_calibrate` is called before `--target auto`
    trains its reference schedule, `on_clock` before the step clock is measured."""
    r = request
    target = parse_target(r.target_text)
    space = load_space(r.space_file, r.max_epochs, r.evals_per_epoch)
    dev = resolve_device(r.device)
    threads = threads_per_worker(r.jobs) if dev.type == "cpu" else 1
    dataset = load_dataset(r.data, dev, val_size=r.val_size)  # bad data fails before a database is created
    storage = make_storage(r.storage_url)
    try:
        return _open(r, target, space, dev, threads, dataset, storage, on_calibrate, on_clock)
    except BaseException:
        close_storage(storage)
        raise


def _open(r, target, space, dev, threads, dataset, storage, on_calibrate, on_clock) -> Prepared:
    stored = stored_record(storage, r.study_name)
    clock, table = resolve_clock(r, stored, space, dataset, threads, storage, on_clock)
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
        clock=clock, clock_table=table,
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


CLOCK_KINDS = ("calibrated", "measured")


def resolve_clock(
    r: OptimizeRequest, stored: StudyRecord | None, space: SearchSpace, dataset: DeviceData, threads: int,
    storage: RDBStorage, on_clock: Callable[[], None] | None,
) -> tuple[str, dict[str, Any] | None]:  # fmt: skip
    """(clock kind, step-clock table) for the study: the stored ones when it exists, else the
    one asked for, reused from `clock_from` or measured now."""
    given = load_clock(r.clock_from, storage) if r.clock_from else None
    if stored is not None:
        if r.clock is not None and r.clock != stored.clock:
            raise StudyError(f"study {r.study_name!r} keeps its seconds in the {stored.clock} clock, not the "
                             f"{r.clock} one; use another --study name")  # fmt: skip
        if given is not None and given.to_dict() != stored.clock_table:
            raise StudyError(f"study {r.study_name!r} has its own step clock, not the one in {r.clock_from}; "
                             "leave out --clock-from to reopen it")  # fmt: skip
        return stored.clock, stored.clock_table
    kind = r.clock or "calibrated"
    if kind == "measured":
        if given is not None:
            raise StudyError("--clock-from gives a step clock, which --clock measured does not use")
        return kind, None
    batch_sizes, augments = clock_settings(space)
    if given is None:
        if on_clock:
            on_clock()
        given = calibrate_clock(dataset, batch_sizes, augments, threads=threads)
    missing = given.covers(batch_sizes, augments)
    if missing:
        raise StudyError(f"the step clock in {r.clock_from} has no cost for {', '.join(missing)}, which the space uses")
    if given.train_size != len(dataset.train_x):
        raise StudyError(f"the step clock in {r.clock_from} was measured for {given.train_size} training images, "
                         f"this data has {len(dataset.train_x)}")  # fmt: skip
    return kind, given.to_dict()


def clock_settings(space: SearchSpace) -> tuple[list[int], list[bool]]:
    """The batch sizes and augmentation settings a space's trials can train with."""
    values = []
    for name in ("batch_size", "augment"):
        param = space.params.get(name)
        if param is None:
            values.append([getattr(TrainConfig(), name)])
        elif isinstance(param, Fixed):
            values.append([param.value])
        elif isinstance(param, CategoricalDistribution):
            values.append(list(param.choices))
        elif param.high - param.low + 1 <= MAX_CLOCK_BATCH_SIZES:
            values.append(list(range(int(param.low), int(param.high) + 1)))
        else:
            raise StudyError(f"the calibrated clock prices each batch size, and {name} ranges over "
                             f"{param.high - param.low + 1} values; give choices, or --clock measured")  # fmt: skip
    return values[0], values[1]


MAX_CLOCK_BATCH_SIZES = 16


def load_clock(source: str, storage: RDBStorage) -> StepClock:
    """A step clock from `study:NAME` (a study in this storage), a step-clock JSON file, or an
    export (which carries its study's clock)."""
    if source.startswith("study:"):
        record = stored_record(storage, source[len("study:") :])
        if record is None or record.clock_table is None:
            raise StudyError(f"--clock-from {source}: no such study with a calibrated clock in this storage")
        return StepClock.from_dict(record.clock_table)
    document = read_document(Path(source))
    table = document if document.get("format") == CLOCK_FORMAT else document.get("clock")
    if not isinstance(table, dict):
        raise StudyError(f"--clock-from {source}: the file holds no step clock")
    try:
        return StepClock.from_dict(table)
    except InputError as exc:
        raise StudyError(f"--clock-from {source}: {exc}") from None


def shared_device_notes(device: torch.device, jobs: int) -> list[str]:
    """A warning when several workers would share one accelerator."""
    if device.type == "cpu" or jobs == 1:
        return []
    cards = 1 if device.index is not None else accelerator_count(device.type)
    if jobs <= cards:
        return []
    return [f"{jobs} workers share {cards} {device.type} device(s): trials that run side by side on one device "
            "slow each other down, so their seconds are not comparable with a lone trial's"]  # fmt: skip
