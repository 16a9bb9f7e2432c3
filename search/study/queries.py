"""Picking and counting a study's trials: the completed ones (those that reached the target),
best first, the closest misses, and how many have finished."""

from __future__ import annotations

from collections.abc import Iterable

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.records.trial import TrialRecord

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # the trials that count towards --trials


def completed(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that reached the target, fastest first (a pruned trial's value is its last
    validation error, so it must never be ranked with these)."""
    done = (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None)
    return sorted(done, key=lambda t: t.value)


def best_completed(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    ranked = completed(trials)
    return ranked[0] if ranked else None


def count_states(trials: Iterable[FrozenTrial]) -> dict[str, int]:
    """Trials by state name in lower case, every state present."""
    counts = {s.name.lower(): 0 for s in TrialState}
    for t in trials:
        counts[t.state.name.lower()] += 1
    return counts


def finished_count(study: optuna.Study) -> tuple[int, int]:
    """(finished, running) trials of the study."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    done = sum(1 for t in trials if t.state in FINISHED)
    return done, len(trials) - done


def top_trials(study: optuna.Study, n: int) -> list[FrozenTrial]:
    """Completed trials by time to target, then the pruned ones that got closest."""
    trials = study.get_trials(deepcopy=False)
    pruned = sorted(
        (t for t in trials if t.state == TrialState.PRUNED),
        key=lambda t: -(TrialRecord.of(t).best_val_accuracy or 0.0),
    )
    return (completed(trials) + pruned)[:n]
