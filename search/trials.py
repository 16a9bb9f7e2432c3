"""Picking and counting trials of a study: the completed ones (those that reached the
target), best first, and how many have finished."""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials that count towards --trials


def completed(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that reached the target, fastest first (a pruned trial's value is its last
    validation error, so it must never be ranked with these)."""
    done = (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None)
    return sorted(done, key=lambda t: t.value)


def best_completed(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    ranked = completed(trials)
    return ranked[0] if ranked else None


def count_states(study: optuna.Study) -> dict[str, int]:
    """Trials by state name in lower case, every state present."""
    counts = {s.name.lower(): 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name.lower()] += 1
    return counts


def finished_count(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    done = sum(1 for t in trials if t.state in FINISHED)
    return done, len(trials) - done
