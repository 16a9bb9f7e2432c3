"""What a study and its trials store, as typed records; the attribute keys are this module's.

A trial's user attributes are written by the objective alone, in three steps: its setup when
training starts (`TrialSetup`), its learning curve at every evaluation (`write_curve`; the
pruner reads it), and how it ended (`TrialResult`, or `write_failure`). A study's attributes
are written once, when the study is created (`StudyRecord`). Every other module reads them
through `TrialRecord.of(trial)` and `StudyRecord.of(study)`, never by key, as Optuna keeps
its own stored keys as constants of the module that writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lenet.clock import StepClock
from lenet.train import RunSummary, TrainConfig

# -- trial attributes --------------------------------------------------------------------------
CONFIG = "config"  # TrainConfig.to_dict() of what the trial trains
TARGET = "target"  # the study's target validation accuracy
SEED = "seed"
DEVICE = "device"
THREADS = "threads"  # torch CPU threads (0: not a CPU trial)
DATA_CHECKSUM = "data_checksum"
VERSIONS = "versions"  # library versions (search.provenance)
BASELINE = "baseline"  # True on the trial that trains the study's baseline (search.baseline)
CURVE = "curve"  # EvalRecord.to_dict() and CLOCK_SECONDS at every evaluation, written as training goes
CLOCK_SECONDS = "clock_seconds"  # curve points and trials: training time in the study's clock
BEST_VAL_ACCURACY = "best_val_accuracy"
EPOCHS = "epochs"
TRAIN_SECONDS = "train_seconds"
SECONDS_TO_TARGET = "seconds_to_target"  # in the study's clock: the trial's value
MEASURED_SECONDS_TO_TARGET = "measured_seconds_to_target"  # read off the wall clock
EPOCHS_TO_TARGET = "epochs_to_target"
IMAGES_TO_TARGET = "images_to_target"
CAPPED_AT = "capped_at"  # cannot win: its time to target is at least this (search/capped.py)
OUTCOME = "outcome"  # reached | budget | diverged | a pruner rule | out_of_memory | interrupted | surplus
REASON = "reason"  # one sentence: why it ended so

CurvePoint = Mapping[str, float]  # EvalRecord's fields


@dataclass(frozen=True)
class TrialSetup:
    """What a trial records when it starts training."""

    config: TrainConfig
    target: float
    device: str
    threads: int
    data_checksum: str
    versions: dict[str, str]
    baseline: bool = False

    def write(self, trial: optuna.Trial) -> None:
        values: dict[str, Any] = {
            CONFIG: self.config.to_dict(),
            TARGET: self.target,
            SEED: self.config.seed,
            DEVICE: self.device,
            THREADS: self.threads,
            DATA_CHECKSUM: self.data_checksum,
            VERSIONS: self.versions,
        }
        if self.baseline:
            values[BASELINE] = True
        for key, value in values.items():
            trial.set_user_attr(key, value)


@dataclass(frozen=True, kw_only=True)
class TrialResult:
    """How a trial ended: its summary against the target, the outcome and its reason. (The
    defaults are what a trial that never ended so reads back as.)"""

    best_val_accuracy: float | None = None
    epochs: float = 0.0
    train_seconds: float = 0.0  # measured
    clock_seconds: float | None = None  # the same training in the study's clock (None: stored before it existed)
    seconds_to_target: float | None = None  # in the study's clock
    measured_seconds_to_target: float | None = None
    epochs_to_target: float | None = None
    images_to_target: int | None = None
    capped_at: float | None = None
    outcome: str | None = None
    reason: str = ""

    _KEYS = {
        "best_val_accuracy": BEST_VAL_ACCURACY, "epochs": EPOCHS, "train_seconds": TRAIN_SECONDS,
        "clock_seconds": CLOCK_SECONDS, "seconds_to_target": SECONDS_TO_TARGET,
        "measured_seconds_to_target": MEASURED_SECONDS_TO_TARGET, "epochs_to_target": EPOCHS_TO_TARGET,
        "images_to_target": IMAGES_TO_TARGET, "capped_at": CAPPED_AT, "outcome": OUTCOME, "reason": REASON,
    }  # fmt: skip

    @classmethod
    def of(
        cls,
        summary: RunSummary,
        outcome: str,
        reason: str,
        *,
        clock_seconds: float,
        seconds_to_target: float | None,
        capped_at: float | None = None,
    ) -> TrialResult:
        """`summary`'s figures (measured), with the trial's training and time to target in the
        study's clock."""
        return cls(
            best_val_accuracy=summary.best_val_accuracy,
            epochs=summary.epochs,
            train_seconds=summary.train_seconds,
            clock_seconds=clock_seconds,
            seconds_to_target=seconds_to_target,
            measured_seconds_to_target=summary.seconds_to_target,
            epochs_to_target=summary.epochs_to_target,
            images_to_target=summary.images_to_target,
            capped_at=capped_at,
            outcome=outcome,
            reason=reason,
        )

    def write(self, trial: optuna.Trial) -> None:
        for f in fields(TrialResult):
            trial.set_user_attr(TrialResult._KEYS[f.name], getattr(self, f.name))

    @staticmethod
    def read(attrs: Mapping[str, Any]) -> dict[str, Any]:
        """The result's fields as stored in `attrs` (absent ones at their defaults)."""
        return {f.name: attrs.get(TrialResult._KEYS[f.name], f.default) for f in fields(TrialResult)}


def write_curve(trial: optuna.Trial, curve: list[CurvePoint]) -> None:
    trial.set_user_attr(CURVE, curve)


def write_failure(trial: optuna.Trial, outcome: str, reason: str) -> None:
    """A trial that ends FAIL (out of memory, interrupted, surplus): why, and nothing more."""
    trial.set_user_attr(OUTCOME, outcome)
    trial.set_user_attr(REASON, reason)


@dataclass(frozen=True, kw_only=True)
class TrialRecord(TrialResult):
    """Everything a trial stores, read back: how it ended (TrialResult's fields) and what it
    trained. Fields a trial never wrote (it failed before training, or an older version
    stored it) are None, empty or False."""

    number: int
    state: TrialState
    value: float | None  # seconds to target, for a COMPLETE trial only (a pruned trial's is no time)
    params: dict[str, Any]
    config: TrainConfig | None
    target: float | None
    seed: int | None
    device: str | None
    threads: int | None
    data_checksum: str | None
    versions: dict[str, str]
    baseline: bool
    curve: list[CurvePoint]

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:  # type: ignore[override]  # reads, where TrialResult.of sums up
        a = trial.user_attrs
        config = a.get(CONFIG)
        return cls(
            number=trial.number,
            state=trial.state,
            value=trial.value if trial.state == TrialState.COMPLETE else None,
            params=dict(trial.params),
            config=TrainConfig.from_dict(config) if config else None,
            target=a.get(TARGET),
            seed=a.get(SEED),
            device=a.get(DEVICE),
            threads=a.get(THREADS),
            data_checksum=a.get(DATA_CHECKSUM),
            versions=dict(a.get(VERSIONS) or {}),
            baseline=bool(a.get(BASELINE, False)),
            curve=list(a.get(CURVE) or []),
            **TrialResult.read(a),
        )

    @property
    def images(self) -> int:
        """Training images the trial went through."""
        return int(self.curve[-1].get("images", 0)) if self.curve else 0


def point_seconds(point: CurvePoint) -> float:
    """A curve point's training time in the study's clock (measured, for curves stored before
    the clock existed)."""
    return point.get(CLOCK_SECONDS, point["train_seconds"])


def curve_of(trial: FrozenTrial) -> list[CurvePoint]:
    """Just the learning curve: the pruner reads it for every peer at every evaluation."""
    return trial.user_attrs.get(CURVE) or []


# -- study attributes --------------------------------------------------------------------------
STUDY_TARGET = "target"
STUDY_TARGET_SOURCE = "target_source"
STUDY_OBJECTIVE = "objective"
STUDY_INTERMEDIATE_VALUES = "intermediate_values"
STUDY_SPACE = "space"
STUDY_DEVICE = "device"
STUDY_THREADS = "threads"
STUDY_DATA_CHECKSUM = "data_checksum"
STUDY_SEED = "seed"
STUDY_CREATED = "created"
STUDY_BASELINE = "baseline"  # the baseline trial's parameters (search.baseline)
STUDY_HARDWARE = "hardware"  # lenet.device.hardware(): device name and count, CUDA and cuDNN versions
STUDY_JOBS = "jobs"  # worker processes of the run that created it
STUDY_CLOCK = "clock"  # "calibrated" or "measured": what a trial's seconds are
STUDY_CLOCK_TABLE = "clock_table"  # lenet.clock.StepClock.to_dict(), for the calibrated clock
STUDY_CONFIRMATION = "confirmation"  # search.confirm.Confirmation.to_dict(): the race on fresh seeds

OBJECTIVE_TEXT = (
    "training seconds (evaluation excluded) until validation accuracy first reaches the target, in the "
    "study's clock, interpolated between the two evaluations that bracket the crossing"
)
INTERMEDIATE_TEXT = "validation error (1 - accuracy) at the end of each epoch (step = epoch)"


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

    _KEYS = {
        "target": STUDY_TARGET, "target_source": STUDY_TARGET_SOURCE, "space": STUDY_SPACE,
        "device": STUDY_DEVICE, "threads": STUDY_THREADS, "data_checksum": STUDY_DATA_CHECKSUM,
        "seed": STUDY_SEED, "created": STUDY_CREATED, "baseline": STUDY_BASELINE,
        "objective": STUDY_OBJECTIVE, "intermediate_values": STUDY_INTERMEDIATE_VALUES,
        "hardware": STUDY_HARDWARE, "jobs": STUDY_JOBS, "clock": STUDY_CLOCK, "clock_table": STUDY_CLOCK_TABLE,
        "confirmation": STUDY_CONFIRMATION,
    }  # fmt: skip

    def items(self) -> dict[str, Any]:
        """The study attributes to store (a study without a baseline stores none)."""
        values = {self._KEYS[f.name]: getattr(self, f.name) for f in fields(self)}
        for key in (STUDY_BASELINE, STUDY_HARDWARE, STUDY_CLOCK_TABLE, STUDY_CONFIRMATION):
            if values[key] is None:
                del values[key]
        return values

    @classmethod
    def of(cls, attrs: Mapping[str, Any]) -> StudyRecord | None:
        """The record of a study's attributes; None for a study lenet-search did not create."""
        if STUDY_TARGET not in attrs:
            return None
        space = dict(attrs.get(STUDY_SPACE) or {})
        space.setdefault("evals_per_epoch", 1)  # studies from before it was stored evaluated once an epoch
        return cls(
            target=attrs[STUDY_TARGET],
            target_source=attrs.get(STUDY_TARGET_SOURCE, ""),
            space=space,
            device=attrs.get(STUDY_DEVICE, ""),
            threads=attrs.get(STUDY_THREADS, 0),
            data_checksum=attrs.get(STUDY_DATA_CHECKSUM, ""),
            seed=attrs.get(STUDY_SEED, 0),
            created=attrs.get(STUDY_CREATED, ""),
            baseline=dict(attrs[STUDY_BASELINE]) if attrs.get(STUDY_BASELINE) else None,
            hardware=dict(attrs[STUDY_HARDWARE]) if attrs.get(STUDY_HARDWARE) else None,
            jobs=attrs.get(STUDY_JOBS, 1),
            clock=attrs.get(STUDY_CLOCK, "measured"),
            clock_table=dict(attrs[STUDY_CLOCK_TABLE]) if attrs.get(STUDY_CLOCK_TABLE) else None,
            confirmation=dict(attrs[STUDY_CONFIRMATION]) if attrs.get(STUDY_CONFIRMATION) else None,
            objective=attrs.get(STUDY_OBJECTIVE, OBJECTIVE_TEXT),
            intermediate_values=attrs.get(STUDY_INTERMEDIATE_VALUES, INTERMEDIATE_TEXT),
        )


def step_clock(record: StudyRecord | None) -> StepClock | None:
    """The study's step clock; None for the measured clock."""
    if record is None or record.clock != "calibrated" or record.clock_table is None:
        return None
    return StepClock.from_dict(record.clock_table)


def study_record(study: optuna.Study) -> StudyRecord | None:
    return StudyRecord.of(study.user_attrs)
