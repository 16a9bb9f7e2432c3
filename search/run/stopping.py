"""When a search stops itself (`--patience P`, off by default): once P trials in a row, in the
order the schedule ended them, have not improved the best time to target by 1 %, more trials
are unlikely to pay for themselves (Ray Tune's ExperimentPlateauStopper and Optuna's
BestValueStagnationEvaluator judge a study alike)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

MIN_GAIN = 0.01  # a new best by less than 1 % is within what fresh seeds move a schedule's time by


@dataclass(frozen=True)
class Stop:
    """Why the search stopped: `ended` trials had ended, the last `patience` of them no better."""

    ended: int
    patience: int
    best_number: int
    best_seconds: float

    @property
    def reason(self) -> str:
        return (
            f"stopped after {self.ended} trials: the last {self.patience} (its patience) did not improve the best "
            f"time to target, trial {self.best_number}'s {self.best_seconds:.1f} s, by {100 * MIN_GAIN:g} %"
        )


def patience_stop(ended: Sequence[FrozenTrial], patience: int | None) -> Stop | None:
    """Whether a search whose finished trials ended in this order stops before its next trial.
    Never before a trial has reached the target: there is nothing to be patient about."""
    if patience is None:
        return None
    best: FrozenTrial | None = None
    since = 0  # trials since the last improvement by MIN_GAIN or more
    for t in ended:
        value = t.value if t.state == TrialState.COMPLETE else None
        if value is not None and (best is None or value < best.value * (1 - MIN_GAIN)):
            since = 0
        else:
            since += 1
        if value is not None and (best is None or value < best.value):
            best = t
    if best is None or since < patience:
        return None
    return Stop(len(ended), patience, best.number, best.value)
