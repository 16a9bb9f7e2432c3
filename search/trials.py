"""Picking trials out of a study: the completed ones (those that reached the target), best first."""

from __future__ import annotations

from collections.abc import Iterable

from optuna.trial import FrozenTrial, TrialState


def completed(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    """Trials that reached the target, fastest first (a pruned trial's value is its last
    validation error, so it must never be ranked with these)."""
    done = (t for t in trials if t.state == TrialState.COMPLETE and t.value is not None)
    return sorted(done, key=lambda t: t.value)


def best_completed(trials: Iterable[FrozenTrial]) -> FrozenTrial | None:
    ranked = completed(trials)
    return ranked[0] if ranked else None
