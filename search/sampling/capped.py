"""What TPE learns from trials the cannot-win rule stopped: they count as capped runs.

The cannot-win rule is adaptive capping (ParamILS, Hutter et al. 2009): a run stopped at the
incumbent's time is known only to take at least that long, a censored observation (SMAC with
censored data, Hutter et al. 2011). Optuna's TPE ranks every pruned trial after every
completed one, so with the pruner on its "good" group held the study's first, slow leaders and
never the near misses (docs/search.md, "The objective"). So TPE is shown a near miss (within
`NEAR` of the target) as completed at its cap, the simplest imputation of a censored time; TPE
uses only the ranking. The storage is not touched: the trial stays PRUNED without a value, and
everything this tool shows comes from the real values; only the sampler's view changes.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Container

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.records.trial import TrialRecord
from search.sampling.wrapped import WrappedSampler
from search.study.view import StudyView

NEAR = 0.01  # within 1 point of the target: about one evaluation's noise on 5,000 images
# The private members of optuna.Study that TPE (and its search-space helpers) read. They are


def capped_value(trial: FrozenTrial, near: float = NEAR) -> float | None:
    """The cap of a near-miss stopped by the cannot-win rule, or None for any other trial."""
    if trial.state != TrialState.PRUNED:
        return None
    record = TrialRecord.of(trial)
    cap, target, best = record.capped_at, record.target, record.best_val_accuracy
    if cap is None or target is None or best is None:
        return None
    return float(cap) if best >= target - near else None


def without_marker(trial: FrozenTrial) -> FrozenTrial:
    """A pruned trial as TPE should rank it, by how far it got (its last step) and its last
    validation error there: without the NaN that the objective reports after the last step
    (so that Optuna stores no value for it)."""
    if trial.state != TrialState.PRUNED or not any(math.isnan(v) for v in trial.intermediate_values.values()):
        return trial
    seen = copy.copy(trial)
    seen.intermediate_values = {s: v for s, v in trial.intermediate_values.items() if not math.isnan(v)}
    return seen


def as_completed(trial: FrozenTrial, value: float) -> FrozenTrial:
    """A copy of `trial`, COMPLETE with `value` (through FrozenTrial's public setters)."""
    seen = copy.copy(trial)
    seen.state = TrialState.COMPLETE
    seen.value = value
    return seen


class CappedView(StudyView):
    """The study as the sampler sees it: near-miss capped trials completed at their cap. TPE reads
    trials through `Study._get_trials` (with its per-trial cache, which the real study resets) as
    well as `get_trials`; both are covered, and a test checks that TPE's proposals follow the view.
    """

    def __init__(self, study: optuna.Study, near: float = NEAR) -> None:
        super().__init__(study)
        self._near = near

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        # A capped trial moves from PRUNED to COMPLETE, so read both when COMPLETE is asked for.
        fetch = states
        if states is not None and TrialState.COMPLETE in states and TrialState.PRUNED not in states:
            fetch = (*[s for s in TrialState if s in states], TrialState.PRUNED)
        seen = []
        for trial in self._study._get_trials(deepcopy=deepcopy, states=fetch, use_cache=use_cache):
            cap = capped_value(trial, self._near)
            seen.append(without_marker(trial) if cap is None else as_completed(trial, cap))
        return seen if states is None else [t for t in seen if t.state in states]


class CappedAsCompleted(WrappedSampler):
    """`base`, sampling as if near-miss capped trials had completed at their cap."""

    def __init__(self, base: optuna.samplers.BaseSampler, near: float = NEAR) -> None:
        super().__init__(base)
        self.near = near

    def view(self, study: optuna.Study) -> optuna.Study:
        return CappedView(study, self.near)  # type: ignore[return-value]  # a sampler's view of a Study
