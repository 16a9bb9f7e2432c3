"""What `lenet-search studies` shows: the studies in a storage and their best trials."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from search.trials import best_completed, completed


@dataclass(frozen=True)
class StudyRow:
    name: str
    states: dict[str, int]  # trials by state
    outcomes: dict[str, int]  # finished trials by outcome (reached, underfit, cannot_win...)
    best_value: float | None
    best_trial: int | None
    target: float | None
    created: str | None


def list_studies(storage: RDBStorage) -> list[StudyRow]:
    rows = []
    for summary in storage.get_all_studies():
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        best = best_completed(trials)
        rows.append(
            StudyRow(
                name=summary.study_name,
                states=dict(Counter(t.state.name.lower() for t in trials)),
                outcomes=dict(Counter(t.user_attrs.get("outcome", "?") for t in trials if t.state.is_finished())),
                best_value=best.value if best else None,
                best_trial=best.number if best else None,
                target=study.user_attrs.get("target"),
                created=study.user_attrs.get("created")
                or (summary.datetime_start.isoformat(sep=" ", timespec="seconds") if summary.datetime_start else None),
            )
        )
    return rows


def top_trials(study: optuna.Study, n: int) -> list[FrozenTrial]:
    """Completed trials by time to target, then the pruned ones that got closest."""
    trials = study.get_trials(deepcopy=False)
    complete = completed(trials)
    pruned = sorted(
        (t for t in trials if t.state == TrialState.PRUNED),
        key=lambda t: -t.user_attrs.get("best_val_accuracy", 0.0),
    )
    return (complete + pruned)[:n]


def delete_study(storage: RDBStorage, name: str) -> int:
    """Delete the study; returns how many trials it held."""
    study = optuna.load_study(study_name=name, storage=storage)
    count = len(study.get_trials(deepcopy=False))
    optuna.delete_study(study_name=name, storage=storage)
    return count
