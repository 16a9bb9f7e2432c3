"""Asking a pruner about a trial as of one moment of the schedule: the pruner reads only the
trials that had ended by then (a view of the study), whatever has finished on the machine."""

from __future__ import annotations

import optuna
from optuna.pruners import BasePruner, HyperbandPruner
from optuna.trial import FrozenTrial

from search.study.view import StudyView

# HyperbandPruner reads its brackets' trials from the storage itself (optuna/pruners/_hyperband.py):
# it is asked through these private members instead, with the view's trials of the trial's bracket.
# pyproject bounds optuna; tests/search/pruning/test_as_of.py fails loudly when they move.
PRIVATE_HYPERBAND_API = ("_pruners", "_try_initialization", "_get_bracket_id")


def prune_as_of(pruner: BasePruner, view: StudyView, trial: FrozenTrial) -> bool:
    """Whether `pruner` prunes `trial`, seeing the study as `view` shows it."""
    if not isinstance(pruner, HyperbandPruner):
        return pruner.prune(view, trial)  # type: ignore[arg-type]  # a view offers what pruners read
    study: optuna.Study = view  # type: ignore[assignment]
    if not pruner._pruners:
        pruner._try_initialization(study)
        if not pruner._pruners:
            return False
    bracket = pruner._get_bracket_id(study, trial)
    peers = [t for t in view.get_trials(deepcopy=False) if pruner._get_bracket_id(study, t) == bracket]
    return pruner._pruners[bracket].prune(StudyView(view, peers), trial)  # type: ignore[arg-type]
