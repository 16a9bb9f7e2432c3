"""The baseline: a new study's trial 0 trains a known-good schedule.

The search then has a time to beat, and a peer, from its first minute, as Ray Tune's
`points_to_evaluate` gives it. The schedule is stored in the study's attributes when the study
is created, and every worker's sampler gives its values to trial number 0.

Not `study.enqueue_trial`: SQLite ignores `SELECT ... FOR UPDATE`, so two worker processes
can both pop the same enqueued trial and train it twice (optuna/optuna#4002; seen here with
4 workers). Trial numbers are unique (Optuna derives them from the row id inside the insert's
transaction), so "trial 0" is claimed by exactly one worker. If trial 0 fails (its worker was
killed), the baseline is not repeated: the retry is an ordinary trial.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial

from search.sampling.wrapped import WrappedSampler
from search.space import contains

BASELINE_TRIAL = 0


class BaselineSampler(WrappedSampler):
    """Gives trial 0 the baseline's values (parameters it lacks, or values outside the
    space, are drawn); every other trial, and everything else, is the base sampler's."""

    def __init__(self, params: Mapping[str, Any], base: BaseSampler) -> None:
        super().__init__(base)
        self.params = dict(params)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if trial.number == BASELINE_TRIAL:
            return {}  # every parameter of trial 0 goes through sample_independent
        return super().infer_relative_search_space(study, trial)

    def sample_independent(
        self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        if trial.number == BASELINE_TRIAL and param_name in self.params:
            value = self.params[param_name]
            if contains(param_distribution, value):
                return value
        return super().sample_independent(study, trial, param_name, param_distribution)
