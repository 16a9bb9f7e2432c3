"""A study's layout: its lanes, the torch threads of each, the processes that execute them here,
and its clock, as stored for a study that exists or chosen for a new one."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from optuna.storages import BaseStorage

from lenet.clock import StepClock
from lenet.data import DeviceData
from lenet.device import accelerator_count, cpu_count
from lenet.errors import blame
from search.clock.calibration import choose_lanes, measure_clock
from search.clock.source import check_fits, clock_settings, load_clock
from search.errors import ClockError, RequestError, StudyError
from search.records.study import StudyRecord
from search.run.spec import OptimizeRequest, lane_threads
from search.space import SearchSpace

Hook = Callable[[], None] | None


@dataclass(frozen=True)
class Layout:
    lanes: int
    threads: int | None  # torch threads per lane (None off the CPU)
    jobs: int  # processes that execute the lanes here
    clock: str  # calibrated | measured
    clock_table: dict[str, Any] | None
    notes: tuple[str, ...] = ()  # warnings for the user
    choice: str | None = None  # how a new CPU study's lanes were chosen (the measurement)
    population: int = 1  # members trained as one model (lenet/members.py); 1: every trial alone


def layout_for(
    r: OptimizeRequest,
    stored: StudyRecord | None,
    space: SearchSpace,
    data: DeviceData,
    storage: BaseStorage,
    on_clock: Hook,
) -> Layout:
    """The stored study's layout (checked against the request), or a new study's."""
    with blame("clock_from"):
        given = load_clock(r.clock_from, storage) if r.clock_from else None
    if stored is not None:
        return _stored(r, stored, given, data.device)
    kind = r.clock or "calibrated"
    if (r.population or 1) > 1:
        if kind == "measured":
            raise RequestError(
                "a population's members are priced as their solo runs, which only the calibrated clock does; "
                "leave out --clock measured",
                subject="population",
            )
        return _population_layout(r, r.population, given, space, data, on_clock)
    if kind == "measured":
        if given is not None:
            raise RequestError("a step clock was given, which the measured clock does not use", subject="clock_from")
        lanes = r.lanes or r.jobs or 1
        return Layout(lanes, lane_threads(data.device, lanes), r.jobs or lanes, kind, None)
    batch_sizes, augments = clock_settings(space)
    notes: list[str] = []
    chosen: str | None = None
    if given is not None:
        lanes = r.lanes or r.jobs or given.processes
        if lanes != given.processes and data.device.type == "cpu":
            notes.append(
                f"the step clock in {r.clock_from} was measured by {given.processes} process(es) side by "
                f"side; the study trains {lanes} lane(s) at once, so its seconds are priced as if not"
            )
        clock = given
    else:
        if on_clock:
            on_clock()
        cores = cpu_count()
        if r.lanes or r.jobs or data.device.type != "cpu" or cores == 1:
            lanes = r.lanes or r.jobs or _default_lanes(data.device)
            processes = lanes if data.device.type == "cpu" else 1  # cards measure alone: they share nothing
            clock = measure_clock(
                data, r.data, batch_sizes, augments, threads=lane_threads(data.device, lanes) or 1, processes=processes
            )
        else:
            choice = choose_lanes(data, r.data, batch_sizes, augments, cores)
            lanes, clock, chosen = choice.lanes, choice.clock, choice.note
    check_fits(clock, space, len(data.train_x), r.clock_from)
    # A clock given, measured as these lanes train, trains them with its threads, so that it prices them.
    measured_so = given is not None and data.device.type == "cpu" and clock.processes == lanes and clock.threads
    threads = min(clock.threads, lane_threads(data.device, lanes) or 1) if measured_so else None
    threads = threads or lane_threads(data.device, lanes)
    return Layout(lanes, threads, r.jobs or lanes, kind, clock.to_dict(), tuple(notes), chosen)


def _population_layout(
    r: OptimizeRequest, population: int, given: StepClock | None, space: SearchSpace, data: DeviceData, on_clock: Hook
) -> Layout:
    """A new population study: `population` lanes per process (one process per card, or one on
    the CPU), each process's cores shared by its populations, and a clock that prices a member's
    steps as its solo run's (measured by the processes side by side, one lane each)."""
    lanes = r.lanes or population * (r.jobs or _default_lanes(data.device))
    jobs = r.jobs or math.ceil(lanes / population)
    threads = lane_threads(data.device, jobs)
    notes: list[str] = []
    if given is not None:
        clock = given
        if clock.processes != jobs and data.device.type == "cpu":
            notes.append(
                f"the step clock in {r.clock_from} was measured by {clock.processes} process(es) side by side; "
                f"the study's populations train in {jobs}, so its seconds are priced as if not"
            )
    else:
        if on_clock:
            on_clock()
        batch_sizes, augments = clock_settings(space)
        processes = jobs if data.device.type == "cpu" else 1
        clock = measure_clock(data, r.data, batch_sizes, augments, threads=threads or 1, processes=processes)
    check_fits(clock, space, len(data.train_x), r.clock_from)
    return Layout(lanes, threads, jobs, "calibrated", clock.to_dict(), tuple(notes), population=population)


def _default_lanes(device: torch.device) -> int:
    """One lane per card (a device named with its index is one card); one on a lone CPU core."""
    return 1 if device.type == "cpu" or device.index is not None else max(1, accelerator_count(device.type))


def _stored(r: OptimizeRequest, stored: StudyRecord, given: StepClock | None, device: torch.device) -> Layout:
    name = r.study_name
    if r.clock is not None and r.clock != stored.clock:
        raise StudyError(
            f"study {name!r} keeps its seconds in the {stored.clock} clock, not the {r.clock} one; "
            "use another study name",
            subject="clock",
        )
    if given is not None and (stored.clock_table is None or given != StepClock.from_dict(stored.clock_table)):
        raise ClockError(
            f"study {name!r} has its own step clock, not the one in {r.clock_from}; leave it out to reopen the study",
            subject="clock_from",
        )
    if r.lanes is not None and r.lanes != stored.lanes:
        raise StudyError(
            f"study {name!r} has {stored.lanes} lane(s), not {r.lanes}: its schedule is fixed when it is created; "
            "use another study name",
            subject="lanes",
        )
    if r.population is not None and r.population != stored.population:
        raise StudyError(
            f"study {name!r} trains populations of {stored.population}, not {r.population}: a member's arithmetic "
            "depends on its population's width, fixed when the study is created; use another study name",
            subject="population",
        )
    threads = stored.threads if device.type == "cpu" else None
    if stored.population > 1:
        jobs = r.jobs or math.ceil(stored.lanes / stored.population)
        return Layout(stored.lanes, threads, jobs, stored.clock, stored.clock_table, population=stored.population)
    jobs = r.jobs or stored.lanes
    notes = ()
    if jobs < stored.lanes:
        notes = (
            f"study {name!r} has {stored.lanes} lanes and {jobs} process(es) execute them here: its lanes take "
            f"turns, each with the study's {threads or 'device'} thread(s); the study is the same, only slower",
        )
    return Layout(stored.lanes, threads, jobs, stored.clock, stored.clock_table, notes)
