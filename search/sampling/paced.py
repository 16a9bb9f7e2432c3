"""What TPE learns from trials the saturation pruner stopped as slow: each is ranked after every
completed trial, and among the stopped ones by the time its pace would have taken to the target.

Optuna's TPE ranks every pruned trial after every completed one, and pruned trials among
themselves by the last step they reported (an epoch), so with the pruner on its "good" group
held the study's first, slow leader and the near misses that trained longest, and a trial stopped
at half an epoch (which reports step 0) came last whatever it had shown (docs/search.md, "Whole
studies, seed 11"). A stopped trial is a censored run (SMAC with censored data, Hutter et al.
2011): known only to take longer than it trained. Its imputed time here is its **pace** against
the leader, who needed `tau` seconds of the clock to reach the best accuracy the trial reached
in the `t` it trained before it was stopped: the leader's time to target scaled by `t / tau`,
never better than the leader's (the trial lost to it). Ranked so, the stopped trials of two
unpruned studies follow their true times to target better than by the step they reached
(benchmarks/sampler_food.py; docs/search.md). The pace is optimistic, though (a median 1.2-1.3x
below the true times of those that got there), so a stopped trial stays ranked after the
completed ones, as Optuna ranks a pruned trial: shown completed at its pace, half-epoch trials
had filled the good group ahead of slower schedules that reached the target (docs/search.md,
"Stopped trials after the completed ones").

The storage is not touched: the trial stays PRUNED without a value, and everything this tool
shows comes from the real values; only the sampler's view changes. Trials that Optuna's own
pruners stopped, trials that diverged, and trials that ran out of budget keep Optuna's
ranking, so `--pruner median` is Optuna's behaviour.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Container, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from lenet.curve import CHANCE
from search.pruning.curves import curve_points, seconds_to_reach
from search.pruning.saturation import SLOW_RULES
from search.records.trial import TrialRecord
from search.sampling.wrapped import WrappedSampler
from search.study.queries import completed
from search.study.view import StudyView

# TPE ranks pruned trials by their last step, the furthest first, then by the value reported
# there (optuna/samplers/_tpe/sampler.py, `_get_pruned_trial_score`; tests/search/sampling/
# test_paced.py fails if that moves): a stopped trial is shown with its pace at this step, which
# no epoch reaches, so it ranks after every completed trial, before every other pruned one, and
# among the stopped ones by pace.
PACED_STEP = 2**31 - 1


def paced_value(
    trial: FrozenTrial, leader_seconds: float, leader_points: Sequence[tuple[float, float]]
) -> float | None:
    """The time to target a trial the pruner stopped as slow is shown at: the leader's
    (`leader_seconds`, its curve `leader_points`) scaled by the trial's training when stopped
    over the leader's time to the best accuracy the trial had by then; None for any other trial."""
    if trial.state != TrialState.PRUNED or TrialRecord.of(trial).outcome not in SLOW_RULES:
        return None
    points = curve_points(trial)
    if not points:
        return None
    best = max(a for _, a in points)
    leader_took = seconds_to_reach(leader_points, best) if best > CHANCE else None
    if not leader_took:
        return None  # at chance level (or beyond the leader's curve): nothing to scale
    return leader_seconds * max(1.0, points[-1][0] / leader_took)


def without_marker(trial: FrozenTrial) -> FrozenTrial:
    """A pruned trial as TPE should rank it, by how far it got (its last step) and its last
    validation error there: without the NaN that the objective reports after the last step
    (so that Optuna stores no value for it)."""
    if trial.state != TrialState.PRUNED or not any(math.isnan(v) for v in trial.intermediate_values.values()):
        return trial
    seen = copy.copy(trial)
    seen.intermediate_values = {s: v for s, v in trial.intermediate_values.items() if not math.isnan(v)}
    return seen


def at_pace(trial: FrozenTrial, value: float) -> FrozenTrial:
    """A copy of the pruned `trial` whose only intermediate value is `value` at PACED_STEP."""
    seen = copy.copy(trial)
    seen.intermediate_values = {PACED_STEP: value}
    return seen


def paced(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """`trials` as the sampler sees them: those stopped as slow at their pace against the best
    of the completed ones among them (`at_pace`), the other pruned ones without the no-value
    marker."""
    done = [t for t in completed(trials) if curve_points(t)]
    leader = done[0] if done else None
    leader_points = curve_points(leader) if leader is not None else []
    seen = []
    for trial in trials:
        value = paced_value(trial, leader.value, leader_points) if leader is not None else None
        seen.append(without_marker(trial) if value is None else at_pace(trial, value))
    return seen


class PacedView(StudyView):
    """The study as the sampler sees it (`paced`). TPE reads trials through `Study._get_trials`
    (with its per-trial cache, which the real study resets) as well as `get_trials`; both are
    covered, and a test checks that TPE's proposals follow the view."""

    def _get_trials(
        self, deepcopy: bool = True, states: Container[TrialState] | None = None, use_cache: bool = False
    ) -> list[FrozenTrial]:
        # A stopped trial is paced against a completed one: read those whenever pruned ones are
        # asked for.
        fetch = states
        if states is not None and TrialState.PRUNED in states and TrialState.COMPLETE not in states:
            fetch = (*[s for s in TrialState if s in states], TrialState.COMPLETE)
        seen = paced(self._study._get_trials(deepcopy=deepcopy, states=fetch, use_cache=use_cache))
        return seen if states is None else [t for t in seen if t.state in states]


class PacedAfterCompleted(WrappedSampler):
    """`base`, sampling with the trials stopped as slow ranked after the completed ones, by pace."""

    def view(self, study: optuna.Study) -> optuna.Study:
        return PacedView(study)  # type: ignore[return-value]  # a sampler's view of a Study
