"""A study's schedules priced in another step clock: what each would cost on another machine or
setting, without training again.

A trial's curve records the optimizer steps at each evaluation, so its time to the target in any
clock is its crossing of the target with those steps priced there: exact for a trial that
reached it. A trial that spent its budget (or diverged) never reaches it, in any clock: the same
steps give the same curve. A trial the pruner stopped was stopped against its own study's
leader; elsewhere its time is only known to be more than the steps it trained, priced there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from optuna.trial import FrozenTrial

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from search.clock.pricing import clock_seconds, time_to_target
from search.errors import ClockError
from search.records.keys import (
    POINT_CLOCK_SECONDS,
    REPRICED_CLOCK,
    REPRICED_CONFIG,
    REPRICED_EXACT,
    REPRICED_OUTCOME,
    REPRICED_PARAMS,
    REPRICED_SCHEDULES,
    REPRICED_SECONDS_HERE,
    REPRICED_SECONDS_THERE,
    REPRICED_STUDY,
    REPRICED_TRAIN_SIZE,
    REPRICED_TRAINED,
    REPRICED_TRIAL,
)
from search.records.trial import CurvePoint, TrialRecord

NEVER = ("budget", "diverged")  # outcomes that no clock changes


@dataclass(frozen=True)
class Trained:
    """What pricing a trial needs of it: its schedule, its target and the curve it trained."""

    number: int
    params: dict[str, Any]
    config: TrainConfig
    target: float
    outcome: str | None
    own_seconds: float | None  # its time to target in its own study's clock
    curve: list[dict[str, float]]

    @classmethod
    def of(cls, record: TrialRecord) -> Trained | None:
        """None for a trial that never trained."""
        if record.config is None or not record.curve or record.target is None:
            return None
        curve = [dict(p) for p in record.curve]
        return cls(
            record.number,
            record.params,
            record.config,
            record.target,
            record.outcome,
            record.clock_seconds_to_target,
            curve,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Trained:
        return cls(**{**d, "config": TrainConfig.from_dict(d["config"])})


@dataclass(frozen=True)
class Priced:
    """One trial's schedule in another clock."""

    number: int
    params: dict[str, Any]
    config: TrainConfig
    outcome: str | None
    own_seconds: float | None  # its time to target in its own study's clock (None: not reached)
    seconds: float  # in the other clock: its time to target, or a lower bound on it (inf: never)
    exact: bool  # the time is exact (or it is never reached); else a lower bound

    @property
    def reached(self) -> bool:
        return self.exact and math.isfinite(self.seconds)

    def sort_key(self) -> tuple[int, float, int]:
        """Exact times first, fastest first; then lower bounds, lowest first; then never."""
        return (0 if self.reached else 2 if math.isinf(self.seconds) else 1, self.seconds, self.number)


def history_of(curve: Sequence[CurvePoint]) -> list[EvalRecord]:
    """The curve's points as the training loop's records (the clock's seconds left out)."""
    return [EvalRecord(**{k: v for k, v in p.items() if k != POINT_CLOCK_SECONDS}) for p in curve]


def price(trained: Trained, clock: StepClock, target: float | None = None) -> Priced:
    """`trained`'s schedule priced by `clock`, to its own target or to `target` (another study's:
    a trial that stopped at its own lower target is only a lower bound for a higher one)."""
    record = trained
    history = history_of(record.curve)
    reached = time_to_target(history, record.target if target is None else target, record.config, clock)
    if reached is not None:
        seconds, exact = reached.clock_seconds, True
    elif record.outcome in NEVER:
        seconds, exact = math.inf, True
    else:  # stopped by the pruner: it had not reached the target by where it stopped
        seconds, exact = clock_seconds(clock, record.config, history[-1]), False
    return Priced(record.number, record.params, record.config, record.outcome, record.own_seconds, seconds, exact)


def reprice(records: Sequence[Trained], clock: StepClock, train_size: int, target: float | None = None) -> list[Priced]:
    """Every trained trial of a study priced by `clock` (to `target`, else each to its own), best
    first; a clock that cannot price them is refused (naming no option: callers `blame` theirs)."""
    if clock.train_size != train_size:
        raise ClockError(
            f"the step clock was measured for {clock.train_size} training images, the study's trials trained on "
            f"{train_size}: its prices do not fit their steps"
        )
    trained = list(records)
    missing = sorted(set(clock.covers({r.config.batch_size for r in trained}, {r.config.augment for r in trained})))
    if missing:
        raise ClockError(f"the step clock has no cost for {', '.join(missing)}, which the study's trials used")
    return sorted((price(r, clock, target) for r in trained), key=Priced.sort_key)


def trained_of(trials: Iterable[FrozenTrial]) -> list[Trained]:
    """What pricing needs of each of a study's trials that trained."""
    return [t for t in (Trained.of(TrialRecord.of(trial)) for trial in trials) if t is not None]


def reprice_document(
    study: str, train_size: int, clock: StepClock, priced: Sequence[Priced], trained: Mapping[int, Trained]
) -> dict[str, Any]:
    """`studies reprice --json`: the schedules as priced, each with what prices it again."""
    return {
        REPRICED_STUDY: study,
        REPRICED_TRAIN_SIZE: train_size,
        REPRICED_CLOCK: clock.to_dict(),
        REPRICED_SCHEDULES: [
            {
                REPRICED_TRIAL: p.number,
                REPRICED_PARAMS: p.params,
                REPRICED_CONFIG: p.config.to_dict(),
                REPRICED_OUTCOME: p.outcome,
                REPRICED_SECONDS_HERE: p.own_seconds,
                REPRICED_SECONDS_THERE: None if math.isinf(p.seconds) else p.seconds,
                REPRICED_EXACT: p.exact,
                REPRICED_TRAINED: trained[p.number].to_dict(),
            }
            for p in priced
        ],
    }


def read_reprice_document(document: Mapping[str, Any]) -> tuple[str, int, list[Trained]]:
    """(study, its training size, what each schedule trained) from `reprice_document`'s output;
    KeyError, TypeError or ValueError where it is not one."""
    schedules = document[REPRICED_SCHEDULES]
    trained = [Trained.from_dict(s[REPRICED_TRAINED]) for s in schedules]
    return str(document[REPRICED_STUDY]), int(document[REPRICED_TRAIN_SIZE]), trained
