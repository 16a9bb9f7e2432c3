"""What a trial stores, as typed records, under the keys of search/records/keys.py.

A trial's user attributes are written by the objective alone, in three steps: its setup when
training starts (`TrialSetup`), its learning curve at every evaluation (`write_curve`; the
pruner reads it), and how it ended (`TrialResult`, or `write_failure`). Every other module
reads them through `TrialRecord.of(trial)` or `curve_of(trial)`, never by key, as Optuna keeps
its own stored keys as constants of the module that writes them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from search.records.keys import (
    ABANDONED,
    BASELINE,
    BEST_VAL_ACCURACY,
    CAPPED_AT,
    CLOCK_SECONDS,
    CONFIG,
    CURVE,
    DATA_CHECKSUM,
    DEVICE,
    EPOCHS,
    EPOCHS_TO_TARGET,
    HORIZON,
    IMAGES_TO_TARGET,
    LANE,
    LANE_END,
    LANE_START,
    MEASURED_SECONDS_TO_TARGET,
    OUTCOME,
    POINT_CLOCK_SECONDS,
    POINT_EPOCH,
    POINT_IMAGES,
    REASON,
    SECONDS_TO_TARGET,
    SEED,
    TAKEN_OVER,
    TARGET,
    THREADS,
    TRAIN_SECONDS,
    VERSIONS,
    WARM_START,
)
from search.records.stored import Stored, stored
from search.records.upgrade import upgrade_curve, upgrade_trial

CurvePoint = Mapping[str, float]


def curve_point(record: EvalRecord, clock_seconds: float) -> dict[str, float]:
    """The stored point of an evaluation: its record and its training in the study's clock."""
    return {**record.to_dict(), POINT_CLOCK_SECONDS: clock_seconds}


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
    warm_start: str | None = None  # which other study's schedule it trains

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
        if self.warm_start:
            values[WARM_START] = self.warm_start
        for key, value in values.items():
            trial.set_user_attr(key, value)


@dataclass(frozen=True, kw_only=True)
class TrialResult(Stored):
    """How a trial ended: its figures against the target, the outcome and its reason. (The
    defaults are what a trial that never ended so reads back as.)"""

    best_val_accuracy: float | None = stored(BEST_VAL_ACCURACY, None)
    epochs: float = stored(EPOCHS, 0.0)
    measured_seconds: float = stored(TRAIN_SECONDS, 0.0)  # training, evaluation excluded
    clock_seconds: float = stored(CLOCK_SECONDS, 0.0)  # the same training in the study's clock
    clock_seconds_to_target: float | None = stored(SECONDS_TO_TARGET, None)  # None: the target was not reached
    measured_seconds_to_target: float | None = stored(MEASURED_SECONDS_TO_TARGET, None)
    epochs_to_target: float | None = stored(EPOCHS_TO_TARGET, None)
    images_to_target: int | None = stored(IMAGES_TO_TARGET, None)
    capped_at: float | None = stored(CAPPED_AT, None)
    outcome: str | None = stored(OUTCOME, None)
    reason: str = stored(REASON, "")

    def write(self, trial: optuna.Trial) -> None:
        for key, value in self.to_dict().items():
            trial.set_user_attr(key, value)

    @classmethod
    def of(cls, record: TrialResult) -> TrialResult:
        """Just how `record` (a TrialRecord, say) ended."""
        return cls(**{f.name: getattr(record, f.name) for f in fields(TrialResult)})


def write_curve(trial: optuna.Trial, curve: list[dict[str, float]]) -> None:
    trial.set_user_attr(CURVE, curve)


def write_config(trial: optuna.Trial, config: TrainConfig | None) -> None:
    """The config alone: what a replayed trial needs for the rules that read its schedule."""
    trial.set_user_attr(CONFIG, config.to_dict() if config is not None else None)


def write_failure(trial: optuna.Trial, outcome: str, reason: str) -> None:
    """A trial that ends FAIL (out of memory, interrupted, surplus): why, and nothing more."""
    trial.set_user_attr(OUTCOME, outcome)
    trial.set_user_attr(REASON, reason)


@dataclass(frozen=True, kw_only=True)
class TrialRecord(TrialResult):
    """Everything a trial stores, read back: how it ended (TrialResult's fields) and what it
    trained. Fields a trial never wrote (it failed before training) are None, empty or False."""

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
    warm_start: str | None
    curve: list[CurvePoint]

    @classmethod
    def of(cls, trial: FrozenTrial) -> TrialRecord:
        a = upgrade_trial(trial.user_attrs)
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
            warm_start=a.get(WARM_START),
            curve=list(a.get(CURVE) or []),
            **TrialResult.values(a),
        )

    @property
    def images(self) -> int:
        """Training images the trial went through."""
        return int(self.curve[-1][POINT_IMAGES]) if self.curve else 0


def curve_of(trial: FrozenTrial) -> list[CurvePoint]:
    """Just the learning curve: the pruner reads it for every peer at every evaluation."""
    return upgrade_curve(trial.user_attrs.get(CURVE) or [])


def as_evaluated(trial: FrozenTrial, curve: list[dict[str, float]]) -> FrozenTrial:
    """A copy of running `trial` as it stood after the evaluations of `curve`: that curve, and
    the intermediate values of the epochs it had reached. A trial taken over is trained again
    from its start while its store holds the points of the executor before (never lowered), and
    a pruner that read those would judge an early evaluation by a later one."""
    seen = copy.copy(trial)
    seen.user_attrs = {**trial.user_attrs, CURVE: curve}
    last_epoch = curve[-1][POINT_EPOCH] if curve else 0.0
    seen.intermediate_values = {s: v for s, v in trial.intermediate_values.items() if s <= last_epoch}
    return seen


# -- the trial's place in the study's schedule (search/run/schedule.py) -------------------------


@dataclass(frozen=True)
class Placement:
    lane: int
    start: float  # lane time (study clock, evaluations included)
    horizon: float  # lane time of its next undecided evaluation (its end, once ended)
    end: float | None  # None until it ended


def write_placement(trial: optuna.Trial, lane: int, start: float, horizon: float) -> None:
    # One attribute at a time, the lane last: a reader that sees the lane sees the rest.
    for key, value in ((LANE_START, start), (HORIZON, horizon), (LANE, lane)):
        trial.set_user_attr(key, value)


def write_horizon(trial: optuna.Trial, horizon: float) -> None:
    trial.set_user_attr(HORIZON, horizon)


def write_lane_end(trial: optuna.Trial, end: float) -> None:
    trial.set_user_attr(LANE_END, end)
    trial.set_user_attr(HORIZON, end)


def write_abandoned(trial: optuna.Trial, why: str) -> None:
    """Its executor stopped without ending it, for reason `why`."""
    trial.set_user_attr(ABANDONED, why)


def abandoned(trial: FrozenTrial) -> bool:
    return bool(trial.user_attrs.get(ABANDONED))


def write_taken_over(trial: optuna.Trial, generation: int) -> None:
    """Another executor holds it now, by its claim `generation` (search/study/claims.py); the
    mark of abandonment cleared first, so a reader that sees the generation sees it cleared."""
    trial.set_user_attr(ABANDONED, "")
    trial.set_user_attr(TAKEN_OVER, generation)


def taken_over(trial: FrozenTrial) -> int:
    """How many times the trial was taken over: the generation of the claim that holds it."""
    return int(trial.user_attrs.get(TAKEN_OVER, 0))


def placement_of(trial: FrozenTrial) -> Placement | None:
    """Where the trial sits in the schedule; None for a trial not (yet) placed. A finished trial
    of a study from before lanes sits on lane 0, ended at time 0: before anything of today's."""
    a = trial.user_attrs
    if LANE in a:
        return Placement(a[LANE], a[LANE_START], a.get(HORIZON, a[LANE_START]), a.get(LANE_END))
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return Placement(0, 0.0, 0.0, 0.0)
    return None
