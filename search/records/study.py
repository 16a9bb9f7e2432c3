"""What a study is created with and keeps, as a typed record of its attributes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
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
    STUDY_OBJECTIVE,
    STUDY_SCHEMA,
    STUDY_SEED,
    STUDY_SPACE,
    STUDY_TARGET,
    STUDY_TARGET_SOURCE,
    STUDY_THREADS,
)
from search.records.upgrade import SCHEMA_VERSION, schema_of, upgrade_study

OBJECTIVE_TEXT = (
    "training seconds (evaluation excluded) until validation accuracy first reaches the target, in the "
    "study's clock, interpolated between the two evaluations that bracket the crossing"
)
INTERMEDIATE_TEXT = "validation error (1 - accuracy) at the end of each epoch (step = epoch)"
CLOCK_KINDS = ("calibrated", "measured")  # a trial's seconds: priced by the step clock, or read off the wall


@dataclass(frozen=True)
class StudyRecord:
    """What a study is created with and keeps, so that its trials stay comparable."""

    target: float
    target_source: str
    space: dict[str, Any]  # SearchSpace.to_dict()
    device: str
    threads: int
    data_checksum: str
    seed: int
    created: str
    baseline: dict[str, Any] | None = None
    hardware: dict[str, Any] | None = None  # None: a study stored before it was recorded
    jobs: int = 1
    clock: str = "measured"  # studies stored before the step clock read the wall clock
    clock_table: dict[str, Any] | None = None
    confirmation: dict[str, Any] | None = None  # written by search.confirm after the search
    objective: str = OBJECTIVE_TEXT
    intermediate_values: str = INTERMEDIATE_TEXT
    schema: int = SCHEMA_VERSION

    _KEYS = dict(
        target=STUDY_TARGET,
        target_source=STUDY_TARGET_SOURCE,
        space=STUDY_SPACE,
        device=STUDY_DEVICE,
        threads=STUDY_THREADS,
        data_checksum=STUDY_DATA_CHECKSUM,
        seed=STUDY_SEED,
        created=STUDY_CREATED,
        baseline=STUDY_BASELINE,
        hardware=STUDY_HARDWARE,
        jobs=STUDY_JOBS,
        clock=STUDY_CLOCK,
        clock_table=STUDY_CLOCK_TABLE,
        confirmation=STUDY_CONFIRMATION,
        objective=STUDY_OBJECTIVE,
        intermediate_values=STUDY_INTERMEDIATE_VALUES,
        schema=STUDY_SCHEMA,
    )
    _OPTIONAL = (STUDY_BASELINE, STUDY_HARDWARE, STUDY_CLOCK_TABLE, STUDY_CONFIRMATION)  # not stored when None

    def items(self) -> dict[str, Any]:
        """The study attributes to store (a study without a baseline stores none)."""
        values = {self._KEYS[f.name]: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in values.items() if not (k in self._OPTIONAL and v is None)}

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> StudyRecord | None:
        """The record of a study's attributes; None for a study lenet-search did not create."""
        if STUDY_TARGET not in attrs:
            return None
        schema = schema_of(attrs)
        a = upgrade_study(attrs)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = cls._KEYS[f.name]
            if key in a and not (key in cls._OPTIONAL and not a[key]):
                values[f.name] = dict(a[key]) if isinstance(a[key], Mapping) else a[key]
        missing = dict(target_source="", device="", data_checksum="", created="", threads=0, seed=0, space={})
        return cls(**{**missing, **values, **dict(schema=schema)})

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
