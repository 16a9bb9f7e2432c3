"""A run priced in the study's clock: its training so far, and its time to the target."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.curve import EvalRecord, first_crossing


def clock_seconds(clock: StepClock | None, config: TrainConfig, record: EvalRecord) -> float:
    """A run's training up to `record` in the study's clock: its steps priced by `clock`, or
    the measured seconds when the study keeps the measured clock (no step clock)."""
    if clock is None:
        return record.train_seconds
    return clock.seconds_for(config.batch_size, config.augment, record.step)


def lane_seconds(clock: StepClock | None, config: TrainConfig, steps: int, evaluations: int) -> float:
    """A run's time on its lane after `steps` optimizer steps and `evaluations` evaluations, in the
    study's clock: its training and its evaluations priced (docs/scaling.md, "Lanes")."""
    assert clock is not None, "the measured clock has no price for steps to come"
    return clock.seconds_for(config.batch_size, config.augment, steps) + evaluations * clock.evaluation


@dataclass(frozen=True)
class TimeToTarget:
    """Where a run first reached the target, interpolated between the two evaluations that
    bracket the crossing, in every unit a run is counted in."""

    clock_seconds: float  # in the study's clock
    measured_seconds: float  # read off the wall clock, evaluation excluded
    epochs: float
    images: int
    evaluation: EvalRecord  # the first evaluation at or above the target


def time_to_target(
    history: Sequence[EvalRecord], target: float, config: TrainConfig, clock: StepClock | None
) -> TimeToTarget | None:
    """The one computation of time to target; None when the run never reached it."""
    cross = first_crossing(history, target)
    if cross is None:
        return None
    return TimeToTarget(
        clock_seconds=cross.interpolate(lambda r: clock_seconds(clock, config, r)),
        measured_seconds=cross.interpolate(lambda r: r.train_seconds),
        epochs=cross.interpolate(lambda r: r.epoch),
        images=round(cross.interpolate(lambda r: r.images)),
        evaluation=cross.after,
    )
