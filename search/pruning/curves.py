"""Learning curves as the pruning rules read them: (seconds in the study's clock, validation
accuracy) at each evaluation, with their epochs."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from optuna.trial import FrozenTrial

from lenet.curve import first_crossing_at
from search.records.keys import POINT_CLOCK_SECONDS, POINT_EPOCH, POINT_VAL_ACCURACY
from search.records.trial import CurvePoint, curve_of

EPS = 1e-6  # evaluation epochs are fractions like 0.52 or 2.0; compare them with a tolerance


def curve_points(trial: FrozenTrial) -> list[tuple[float, float]]:
    """(seconds in the study's clock, validation accuracy) at each evaluation of `trial`."""
    return [(p[POINT_CLOCK_SECONDS], p[POINT_VAL_ACCURACY]) for p in curve_of(trial)]


def curve_epochs(curve: Sequence[CurvePoint]) -> list[float]:
    """The epoch of each evaluation."""
    return [p[POINT_EPOCH] for p in curve]


def best_so_far_at(points: Sequence[tuple[float, float]], seconds: float) -> float | None:
    """Best validation accuracy a curve had reached by `seconds` of training, or None if the
    curve does not extend that far (its trial stopped earlier)."""
    if not points or points[-1][0] < seconds:
        return None
    times = [t for t, _ in points]
    upto = bisect.bisect_right(times, seconds)
    return max((a for _, a in points[:upto]), default=0.0)


def seconds_to_reach(points: Sequence[tuple[float, float]], accuracy: float) -> float | None:
    """When a curve first reached `accuracy`, in the study's clock, interpolated between the
    evaluations that bracket it as a time to target is; None if it never did."""
    found = first_crossing_at([a for _, a in points], accuracy)
    if found is None:
        return None
    i, fraction = found
    low = points[i - 1][0] if i > 0 else 0.0
    return low + fraction * (points[i][0] - low)


def window_start(epochs: Sequence[float], span: float) -> int | None:
    """Index of the first evaluation within the last `span` epochs, or None when the curve
    does not reach back that far (there must be an evaluation `span` epochs ago or earlier)."""
    split = bisect.bisect_right(epochs, epochs[-1] - span + EPS)
    return split if split >= 1 else None


def epochs_text(epochs: float) -> str:
    """'1 epoch', '1.5 epochs', '6.5 epochs': evaluation epochs as reasons and trial lines print them."""
    return f"{epochs:.4g} epoch{'' if epochs == 1 else 's'}"
