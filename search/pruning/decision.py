"""Why a trial was pruned: the contract between a pruner and the objective.

After `should_prune()` said yes, `explain(pruner, number, point)` gives the decision, a rule
and a one-line reason; an `ExplainingPruner` keeps its own, and Optuna's pruners get a generic
one that names the pruner and where it stopped the trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial

from search.records.keys import POINT_EPOCH, POINT_TRAIN_SECONDS, POINT_VAL_ACCURACY
from search.records.trial import CurvePoint


@dataclass(frozen=True)
class Decision:
    rule: str  # diverged | cannot_win | behind | underfit | plateau | out_of_reach, or an Optuna pruner's name
    reason: str
    # cannot_win only: a lower bound on the trial's time to target, the best time it was
    # stopped at (its "cap"); the confirmation race runs near misses so capped (search/sampling/capped.py).
    cap: float | None = None


class ExplainingPruner(BasePruner):
    """A pruner that says why: the last decision that pruned each trial number."""

    def __init__(self) -> None:
        self._decisions: dict[int, Decision] = {}

    def decision_for(self, number: int) -> Decision | None:
        """Why this pruner last pruned trial `number` (in this process), or None."""
        return self._decisions.get(number)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        decision = self.decide(study, trial)
        if decision is not None:
            self._decisions[trial.number] = decision
        return decision is not None

    def decide(self, study: optuna.Study, trial: FrozenTrial) -> Decision | None:
        raise NotImplementedError


def explain(pruner: BasePruner, number: int, point: CurvePoint) -> Decision:
    """Why `pruner` pruned trial `number` at evaluation `point`: its own decision if it keeps
    them, else one that names the pruner and where it stopped the trial."""
    if isinstance(pruner, ExplainingPruner):
        decision = pruner.decision_for(number)
        if decision is not None:
            return decision
    name = type(pruner).__name__.removesuffix("Pruner").lower()
    reason = (
        f"{name} pruner: validation error {1 - point[POINT_VAL_ACCURACY]:.4f} at epoch {point[POINT_EPOCH]:.4g} "
        f"({point[POINT_TRAIN_SECONDS]:.1f} s)"
    )
    return Decision(name, reason)
