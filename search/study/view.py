"""A study seen as of one moment: a fixed list of its trials, offering what samplers and pruners
read of a study and nothing else.

Like Optuna's `_BracketStudy` (optuna/pruners/_hyperband.py), the view answers the trial
lists from its own trials and a fixed set of the real study's members; anything else is an
AttributeError, never silently the real study's. Samplers read trials through the private
`Study._get_trials` as well as `get_trials`: both are covered (search/sampling/paced.py leans on
the private members, and its test fails when Optuna moves them).
"""

from __future__ import annotations

import copy
from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

# The private members of optuna.Study that samplers (TPE and its search-space helpers) read:
PRIVATE_STUDY_API = ("_get_trials", "_storage", "_study_id", "_is_multi_objective")
PUBLIC_STUDY_API = ("study_name", "direction", "directions", "user_attrs", "system_attrs", "sampler", "pruner")


# Optuna's internals: pyproject bounds optuna to releases where they hold, and
# tests/search/sampling/test_paced.py fails loudly if one moves or changes its signature.


class StudyView:
    """`study` with `trials` as its trials (None: the study's own, as subclasses see them)."""

    def __init__(self, study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> None:
        self._study = study
        self._trials = None if trials is None else list(trials)

    def __getattr__(self, name: str) -> Any:
        if name in PRIVATE_STUDY_API or name in PUBLIC_STUDY_API:
            return getattr(self._study, name)
        raise AttributeError(f"a view of study {self._study.study_name!r} offers no {name!r}")

    @property
    def trials(self) -> list[FrozenTrial]:
        return self.get_trials()

    def get_trials(self, deepcopy: bool = True, states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        if self._trials is None:
            return self._study._get_trials(deepcopy=deepcopy, states=states, use_cache=use_cache)
        chosen = [t for t in self._trials if states is None or t.state in states]
        return copy.deepcopy(chosen) if deepcopy else chosen


def as_running(trial: FrozenTrial) -> FrozenTrial:
    """A copy of `trial` as it was while it ran: its parameters, no value, no end."""
    seen = copy.copy(trial)
    seen.state = TrialState.RUNNING
    seen.values = None
    seen.datetime_complete = None
    return seen
