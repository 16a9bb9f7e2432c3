"""A run's learning curve: one record per validation evaluation, and where it first
crosses a validation accuracy."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

CHANCE = 0.1  # validation accuracy of an untrained ten-class model: where every curve starts


@dataclass(frozen=True)
class EvalRecord:
    """One point of the learning curve, taken at a validation evaluation."""

    epoch: float  # epochs trained so far (fractional with several evaluations per epoch)
    step: int  # optimizer steps so far
    images: int  # training images seen so far
    train_seconds: float  # measured training time so far, evaluation excluded
    wall_seconds: float  # measured training and evaluation so far (not the caller's work between evaluations)
    lr: float  # learning rate in force for the steps just taken
    train_loss: float  # mean over the steps since the previous evaluation
    train_accuracy: float
    val_loss: float
    val_accuracy: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Crossing:
    """Where a learning curve first reaches a validation accuracy: between the last evaluation
    below it (None: the start of training) and the first at or above it, a `fraction` of the
    way, by linear interpolation of validation accuracy (docs/search.md, "Time to target
    between evaluations", measures the error against dense evaluations)."""

    before: EvalRecord | None
    after: EvalRecord
    fraction: float  # in (0, 1]

    def interpolate(self, measure: Callable[[EvalRecord], float]) -> float:
        """`measure` (seconds, epochs, images, or a clock's seconds) at the crossing; it is 0
        before the first evaluation."""
        low = measure(self.before) if self.before is not None else 0.0
        return low + self.fraction * (measure(self.after) - low)


def first_crossing(history: Sequence[EvalRecord], accuracy: float) -> Crossing | None:
    """The first crossing of `accuracy` by validation accuracy, or None if it was never reached."""
    found = first_crossing_at([record.val_accuracy for record in history], accuracy)
    if found is None:
        return None
    i, fraction = found
    return Crossing(history[i - 1] if i > 0 else None, history[i], fraction)


def first_crossing_at(accuracies: Sequence[float], accuracy: float) -> tuple[int, float] | None:
    """Where a curve of validation accuracies first reaches `accuracy`: the index of the first
    evaluation at or above it and the fraction of the way to it from the one before (from
    chance at the start of training), or None if it never does."""
    for i, reached in enumerate(accuracies):
        if reached >= accuracy:
            low = accuracies[i - 1] if i > 0 else min(CHANCE, accuracy)
            span = reached - low
            return i, 1.0 if span <= 0 else min(1.0, max(0.0, (accuracy - low) / span))
    return None
