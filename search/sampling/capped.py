"""Near misses the cannot-win rule stopped: a lower bound on their time to target.

The cannot-win rule is adaptive capping (ParamILS, Hutter et al. 2009): a run stopped at the
incumbent's time is known only to take at least that long. A near miss (within `NEAR` of the
target) so capped is a candidate of the confirmation race (search/confirm/racer.py), which runs
it on fresh seeds; what the sampler makes of stopped trials is paced.py's.
"""

from __future__ import annotations

from optuna.trial import FrozenTrial, TrialState

from search.records.trial import TrialRecord

NEAR = 0.01  # within 1 point of the target: about one evaluation's noise on 5,000 images


def capped_value(trial: FrozenTrial, near: float = NEAR) -> float | None:
    """The cap of a near-miss stopped by the cannot-win rule, or None for any other trial."""
    if trial.state != TrialState.PRUNED:
        return None
    record = TrialRecord.of(trial)
    cap, target, best = record.capped_at, record.target, record.best_val_accuracy
    if cap is None or target is None or best is None:
        return None
    return float(cap) if best >= target - near else None
