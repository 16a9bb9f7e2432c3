"""The studies in a storage, one study's record and top trials, and deleting one (`lenet-search studies`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.storages import BaseStorage

from lenet.clock import StepClock
from lenet.errors import blame
from search.clock.agreement import ClockAgreement, clock_agreement
from search.clock.reprice import Priced, Trained, reprice, reprice_document, trained_of
from search.clock.source import load_clock
from search.confirm.race import Confirmation, confirmation_of
from search.records.study import StudyRecord, study_record
from search.records.trial import TrialRecord
from search.study.opening import load_existing
from search.study.queries import best_completed, count_states, top_trials
from search.study.storage import opened


@dataclass(frozen=True)
class StudyRow:
    name: str
    states: dict[str, int]  # trials by state
    outcomes: dict[str, int]  # finished trials by outcome (reached, underfit, cannot_win...)
    best_value: float | None
    target: float | None
    created: str | None


@dataclass(frozen=True)
class StudyView:
    """One study's record and its top trials (`studies show`)."""

    name: str
    record: StudyRecord | None
    n_trials: int
    top: list[TrialRecord]
    clock: list[ClockAgreement]  # measured against calibrated seconds, per batch size
    confirmation: Confirmation | None


def list_studies(storage_url: str) -> list[StudyRow]:
    with opened(storage_url) as storage:
        return _rows(storage)


def show_study(storage_url: str, name: str, top: int) -> StudyView:
    with opened(storage_url) as storage:
        study = load_existing(storage, name)
        trials = study.get_trials(deepcopy=False)
        return StudyView(
            name,
            study_record(study),
            len(trials),
            [TrialRecord.of(t) for t in top_trials(study, top)],
            clock_agreement(map(TrialRecord.of, trials)),
            confirmation_of(study),
        )


@dataclass(frozen=True)
class RepriceView:
    """A study's schedules priced in another clock (`studies reprice`)."""

    name: str
    own: StepClock | None  # the study's clock (None: it read the wall clock)
    other: StepClock
    source: str  # where the other clock came from
    train_size: int  # training images the study's trials trained on
    priced: list[Priced]  # best first
    trained: dict[int, Trained]  # what each was priced from, by trial number

    def to_dict(self) -> dict[str, Any]:
        """The `studies reprice --json` document, which `optimize --warm-start` reads back."""
        return reprice_document(self.name, self.train_size, self.other, self.priced, self.trained)


def reprice_study(storage_url: str, name: str, clock_source: str) -> RepriceView:
    """Study `name`'s trials priced by the clock in `clock_source` (a file, or study:NAME here)."""
    with opened(storage_url) as storage:
        study = load_existing(storage, name)
        with blame("clock"):
            other = load_clock(clock_source, storage)
        record = study_record(study)
        own = record.step_clock() if record else None
        records = trained_of(study.get_trials(deepcopy=False))
        train_size = own.train_size if own is not None else other.train_size
        with blame("clock"):
            priced = reprice(records, other, train_size)
        return RepriceView(name, own, other, clock_source, train_size, priced, {t.number: t for t in records})


def count_trials(storage_url: str, name: str) -> int:
    """How many trials study `name` holds (a StudyError if there is no such study)."""
    with opened(storage_url) as storage:
        return len(load_existing(storage, name).get_trials(deepcopy=False))


def _rows(storage: BaseStorage) -> list[StudyRow]:
    rows = []
    for summary in storage.get_all_studies():
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        best = best_completed(trials)
        record = study_record(study)
        rows.append(
            StudyRow(
                name=summary.study_name,
                states=count_states(trials),
                outcomes=dict(Counter(TrialRecord.of(t).outcome or "?" for t in trials if t.state.is_finished())),
                best_value=best.value if best else None,
                target=record.target if record else None,
                created=record.created if record else None,
            )
        )
    return rows


def delete_study(storage_url: str, name: str) -> int:
    """Delete the study; returns how many trials it held."""
    with opened(storage_url) as storage:
        count = len(load_existing(storage, name).get_trials(deepcopy=False))
        optuna.delete_study(study_name=name, storage=storage)
    return count
