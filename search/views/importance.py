"""Parameter importances that rest on every trial that can honestly be compared.

Optuna's importances (and optuna-dashboard's panel) use completed trials only: here, the few
that reached the target (3 of 100 in a default study). Every trial, pruned or not, has a
learning curve in the study's clock, so the quantity measured for all of them is the best
validation accuracy reached by a common training time T. T is the time that half of the
finished trials trained at least as long as; pruned trials stopped earlier are left out, not
imputed (their accuracy at T is unknown). A completed trial that stopped before T at the
target counts with its best accuracy, a lower bound that already ranks it first. fANOVA then
ranks the parameters by how much of that accuracy's variance they explain.
"""

from __future__ import annotations

import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from search.pruning.curves import best_so_far_at, curve_points

MIN_TRIALS = 5  # fewer than this, and fANOVA's forest says little


@dataclass(frozen=True)
class Importances:
    values: dict[str, float]  # parameter -> importance, summing to 1, largest first
    seconds: float  # T: validation accuracy reached by this training time (study's clock)
    trials: int  # how many trials the importances rest on

    @property
    def title(self) -> str:
        return f"importance for validation accuracy by {self.seconds:.1f} s of training ({self.trials} trials)"


def accuracy_importances(trials: Sequence[FrozenTrial]) -> Importances | None:
    finished = [t for t in trials if t.state.is_finished() and t.params and curve_points(t)]
    if len(finished) < MIN_TRIALS:
        return None
    seconds = statistics.median(curve_points(t)[-1][0] for t in finished)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created in memory" line
    try:
        basis = optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for t in finished:
        points = curve_points(t)
        accuracy = best_so_far_at(points, seconds)
        if accuracy is None and t.state == TrialState.COMPLETE:
            accuracy = max(a for _, a in points)
        if accuracy is not None:
            basis.add_trial(create_trial(params=t.params, distributions=t.distributions, value=accuracy))
    if len(basis.trials) < MIN_TRIALS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            values = optuna.importance.get_param_importances(
                basis, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
            )
    except (RuntimeError, ValueError):  # e.g. every trial has the same parameters
        return None
    return Importances(dict(values), seconds, len(basis.trials))
