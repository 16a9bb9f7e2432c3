"""Preparing an `optimize` run: storage, data, target, clock and the study, checked before any
trial starts, so that refused input writes nothing to the study."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.storages import RDBStorage

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.data import DeviceData, load_dataset
from lenet.device import accelerator_count, hardware, resolve_device
from lenet.errors import blame
from search.errors import RequestError, StudyError
from search.pruning.factory import make_pruner
from search.records.provenance import now_text
from search.records.study import StudyRecord
from search.run.layout import Hook, Layout, layout_for
from search.run.spec import (
    OptimizeRequest,
    Placement,
    TrialNote,
    WorkerSpec,
    confirm_placement,
    worker_placements,
)
from search.run.warm import warm_schedules
from search.space import SearchSpace, load_space
from search.study.opening import CreatedMeanwhile, open_study, record_once_created
from search.study.storage import close_storage, make_storage
from search.target import DEFAULT_TARGET, calibrate, parse_target

CREATION_TRIES = 3  # another host creating the study (or deleting a killed creation) that often: give up


@dataclass(frozen=True)
class Prepared:
    request: OptimizeRequest
    spec: WorkerSpec
    study: optuna.Study  # this process's, with the sampler and pruner built once
    storage: RDBStorage  # this process's only storage; close it (search.study.storage.close_storage) when done
    record: StudyRecord  # as stored
    layout: Layout  # its lanes, their threads, the processes executing them here, its clock
    confirm_at: Placement  # where the confirmation race trains
    notes: list[str]  # warnings for the user (another thread count or data set)


@dataclass(frozen=True)
class _Setting:
    """The request's inputs, checked and loaded."""

    target: float | str | None  # a number, 'auto' or None (see search.target.parse_target)
    space: SearchSpace
    device: torch.device
    data: DeviceData


def prepare(
    request: OptimizeRequest, on_calibrate: Hook = None, on_clock: Hook = None, trial_note: TrialNote | None = None
) -> Prepared:
    """Check the request and open its study. `on_calibrate` is called before `--target auto`
    trains its reference schedule, `on_clock` before the step clock is measured; `trial_note`
    annotates every finished trial."""
    r = request
    target = parse_target(r.target_text)
    with blame("space_file"):
        space = load_space(r.space_file, r.max_epochs, r.evals_per_epoch)
    with blame("device"):
        device = resolve_device(r.device)
    with blame("data"):
        data = load_dataset(r.data, device, val_size=r.val_size)  # bad data fails before a database is created
    setting = _Setting(target, space, device, data)
    with blame("storage_url"):
        storage = make_storage(r.storage_url)
    try:
        for _ in range(CREATION_TRIES):
            try:
                return _open(r, setting, storage, on_calibrate, on_clock, trial_note)
            except CreatedMeanwhile:  # another host made the study first: join it as stored
                continue
        raise StudyError(
            f"study {r.study_name!r} was being created and deleted by other hosts {CREATION_TRIES} times "
            "while this one opened it; run the same command again",
            subject="study_name",
        )
    except BaseException:
        close_storage(storage)
        raise


def _open(
    r: OptimizeRequest,
    setting: _Setting,
    storage: RDBStorage,
    on_calibrate: Hook,
    on_clock: Hook,
    trial_note: TrialNote | None,
) -> Prepared:
    stored = record_once_created(storage, r.study_name)
    layout = layout_for(r, stored, setting.space, setting.data, storage, on_clock)
    value, source, explicit = _resolve_target(setting, layout.threads, stored, on_calibrate)
    baseline = setting.space.baseline_params(TrainConfig()) if r.baseline else None
    wanted = StudyRecord(
        target=value,
        target_source=source,
        space=setting.space.to_dict(),
        device=str(setting.device),
        threads=layout.threads or 1,  # accelerator studies have stored 1 since the first version
        data_checksum=setting.data.checksum,
        seed=r.seed,
        created=now_text(),
        baseline=baseline,
        warm_start=_warm_start(r, stored, layout, setting.space, storage, value, baseline),
        hardware=hardware(setting.device),
        jobs=layout.jobs,
        lanes=layout.lanes,
        population=layout.population,
        clock=layout.clock,
        clock_table=layout.clock_table,
    )
    study, notes = open_study(
        r.study_name,
        storage,
        wanted,
        stored,
        sampler=r.sampler,
        seed=r.seed,
        pruner=make_pruner(r.pruner, value, setting.space.max_epochs),
        explicit_target=explicit,
    )
    placements = worker_placements(setting.device, layout.jobs, layout.threads)
    spec = WorkerSpec(r, value, setting.space, str(setting.device), placements, trial_note)
    return Prepared(
        request=r,
        spec=spec,
        study=study,
        storage=storage,
        record=stored or wanted,
        layout=layout,
        confirm_at=confirm_placement(setting.device, layout.jobs),
        notes=[*layout.notes, *notes, *shared_device_notes(setting.device, layout.jobs)],
    )


def _warm_start(
    r: OptimizeRequest,
    stored: StudyRecord | None,
    layout: Layout,
    space: SearchSpace,
    storage: RDBStorage,
    target: float,
    baseline: dict[str, Any] | None,
) -> list[dict[str, Any]] | None:
    """A new study's warm start, from the other study's schedules priced in its clock."""
    if r.warm_start is None or stored is not None:
        return None  # a study that exists keeps the first trials it was created with
    if layout.clock_table is None:
        raise RequestError(
            "a warm start prices the other study's schedules in this study's clock: the measured clock has none",
            subject="warm_start",
        )
    with blame("warm_start"):
        return warm_schedules(r.warm_start, storage, StepClock.from_dict(layout.clock_table), space, target, baseline)


def _resolve_target(
    setting: _Setting, threads: int | None, stored: StudyRecord | None, on_calibrate: Hook
) -> tuple[float, str, bool]:
    """(target, where it came from, whether it was given explicitly)."""
    target = setting.target
    if isinstance(target, float):
        return target, "given with --target", True
    if target == "auto" and stored is None:
        if on_calibrate:
            on_calibrate()
        calibration = calibrate(setting.data, threads=threads or 1)
        return calibration.target, calibration.note, False
    if stored is not None:
        return stored.target, "stored", False  # 'auto' was calibrated when the study was created
    return DEFAULT_TARGET, "default: measured saturation plateau less 1.5 points", False


def shared_device_notes(device: torch.device, jobs: int) -> list[str]:
    """A warning when several workers would share one accelerator."""
    if device.type == "cpu" or jobs == 1:
        return []
    cards = 1 if device.index is not None else accelerator_count(device.type)
    if jobs <= cards:
        return []
    return [
        f"{jobs} workers share {cards} {device.type} device(s): trials that run side by side on one device "
        "slow each other down, so their seconds are not comparable with a lone trial's"
    ]
