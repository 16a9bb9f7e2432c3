"""What a study is created with and keeps, as a typed record of its attributes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import optuna

from lenet.clock import StepClock
from search.records.keys import (
    STUDY_BASELINE,
    STUDY_CLOCK,
    STUDY_CLOCK_TABLE,
    STUDY_CONFIRMATION,
    STUDY_CREATED,
    STUDY_DATA_CHECKSUM,
    STUDY_DEVICE,
    STUDY_HARDWARE,
    STUDY_INTERMEDIATE_VALUES,
    STUDY_JOBS,
    STUDY_LANES,
    STUDY_OBJECTIVE,
    STUDY_POPULATION,
    STUDY_SCHEMA,
    STUDY_SEED,
    STUDY_SPACE,
    STUDY_TARGET,
    STUDY_TARGET_SOURCE,
    STUDY_THREADS,
    STUDY_WAITED,
    STUDY_WARM_START,
)
from search.records.stored import Stored, stored
from search.records.upgrade import SCHEMA_VERSION, schema_of, upgrade_study

OBJECTIVE_TEXT = (
    "training seconds (evaluation excluded) until validation accuracy first reaches the target, in the "
    "study's clock, interpolated between the two evaluations that bracket the crossing"
)
INTERMEDIATE_TEXT = "validation error (1 - accuracy) at the end of each epoch (step = epoch)"
CLOCK_KINDS = ("calibrated", "measured")  # a trial's seconds: priced by the step clock, or read off the wall


@dataclass(frozen=True)
class StudyRecord(Stored):
    """What a study is created with and keeps, so that its trials stay comparable."""

    target: float = stored(STUDY_TARGET)
    target_source: str = stored(STUDY_TARGET_SOURCE, "")
    space: dict[str, Any] = stored(STUDY_SPACE, None)  # SearchSpace.to_dict()
    device: str = stored(STUDY_DEVICE, "")
    threads: int = stored(STUDY_THREADS, 0)
    data_checksum: str = stored(STUDY_DATA_CHECKSUM, "")
    seed: int = stored(STUDY_SEED, 0)
    created: str = stored(STUDY_CREATED, "")
    baseline: dict[str, Any] | None = stored(STUDY_BASELINE, None)
    warm_start: list[dict[str, Any]] | None = stored(STUDY_WARM_START, None)  # params and source of each
    hardware: dict[str, Any] | None = stored(STUDY_HARDWARE, None)  # None: a study stored before it was recorded
    jobs: int = stored(STUDY_JOBS, 1)
    lanes: int = stored(STUDY_LANES, 1)  # studies from before lanes ran one trial at a time
    population: int = stored(STUDY_POPULATION, 1)  # studies from before populations trained solo
    clock: str = stored(STUDY_CLOCK, "measured")  # studies stored before the step clock read the wall clock
    clock_table: dict[str, Any] | None = stored(STUDY_CLOCK_TABLE, None)
    confirmation: dict[str, Any] | None = stored(STUDY_CONFIRMATION, None)  # written by the confirmation race
    objective: str = stored(STUDY_OBJECTIVE, OBJECTIVE_TEXT)
    intermediate_values: str = stored(STUDY_INTERMEDIATE_VALUES, INTERMEDIATE_TEXT)
    schema: int = stored(STUDY_SCHEMA, SCHEMA_VERSION)

    _OPTIONAL = (
        STUDY_BASELINE,
        STUDY_WARM_START,
        STUDY_HARDWARE,
        STUDY_CLOCK_TABLE,
        STUDY_CONFIRMATION,
    )  # not when None

    def items(self) -> dict[str, Any]:
        """The study attributes to store (a study without a baseline stores none)."""
        return {k: v for k, v in self.to_dict().items() if not (k in self._OPTIONAL and v is None)}

    @classmethod
    def partly_written(cls, attrs: Mapping[str, Any]) -> bool:
        """Whether `attrs` are a record whose writing stopped before its target (written last)."""
        return STUDY_TARGET not in attrs and any(f.metadata["key"] in attrs for f in fields(cls))

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> StudyRecord | None:
        """The record of a study's attributes; None for a study lenet-search did not create."""
        if STUDY_TARGET not in attrs:
            return None
        values = cls.values(upgrade_study(attrs))
        for f in fields(cls):
            if f.metadata["key"] in cls._OPTIONAL and not values[f.name]:
                values[f.name] = None  # stored empty: none
            elif isinstance(values[f.name], Mapping):
                values[f.name] = dict(values[f.name])
        record = cls(**values)
        warm = [dict(w) for w in record.warm_start] if record.warm_start else None
        return replace(record, space=dict(record.space or {}), schema=schema_of(attrs), warm_start=warm)

    def step_clock(self) -> StepClock | None:
        """The study's step clock; None for the measured clock."""
        if self.clock != "calibrated" or self.clock_table is None:
            return None
        return StepClock.from_dict(self.clock_table)


def study_record(study: optuna.Study) -> StudyRecord | None:
    return StudyRecord.of(study.user_attrs)


def step_clock(record: StudyRecord | None) -> StepClock | None:
    """The study's step clock; None for the measured clock (or no record)."""
    return record.step_clock() if record is not None else None


def save_waited(study: optuna.Study, seconds: float) -> None:
    """This process's wall seconds spent waiting for other lanes (search/run/executor.py)."""
    study.set_user_attr(f"{STUDY_WAITED}{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}", seconds)


def waited_seconds(study: optuna.Study) -> float:
    """Every executor's waiting, summed."""
    return sum(v for k, v in study.user_attrs.items() if k.startswith(STUDY_WAITED))
