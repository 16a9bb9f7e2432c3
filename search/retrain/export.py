"""Exporting a trial as a config file that `lenet-search train --config` retrains."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial

from search.confirm.race import Confirmation, confirmation_of
from search.errors import ExportError
from search.records.export import ConfirmedTimes, ExportDocument, ExportedStudy, Provenance
from search.records.files import write_json
from search.records.provenance import library_versions, now_text
from search.records.study import study_record
from search.records.trial import TrialRecord, TrialResult
from search.study.opening import load_existing
from search.study.queries import best_completed
from search.study.storage import opened, shown_url


def export_trial(storage_url: str, study_name: str, number: int | None, output: Path) -> ExportDocument:
    """Write the confirmed winner of the study (else its best trial, or trial `number`) to
    `output`; returns what was written."""
    with opened(storage_url) as storage:
        study = load_existing(storage, study_name)
        document = export_document(study, pick_trial(study, number), storage_url)
    write_json(output, document.to_dict())
    return document


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        match = [t for t in trials if t.number == number]
        if not match:
            raise ExportError(
                f"study {study.study_name!r} has no trial {number} (it has {len(trials)} trials)",
                subject="trial_number",
            )
        if TrialRecord.of(match[0]).config is None:
            raise ExportError(
                f"trial {number} of study {study.study_name!r} never started training", subject="trial_number"
            )
        return match[0]
    race = confirmation_of(study)
    if race is not None and race.done and race.incumbent is not None:
        return next(t for t in trials if t.number == race.incumbent)  # the confirmed winner
    best = best_completed(trials)
    if best is None:
        if not trials:
            raise ExportError(f"study {study.study_name!r} has no trials yet; run `lenet-search optimize` first")
        record = study_record(study)
        raise ExportError(
            f"no trial of study {study.study_name!r} reached its target {record.target if record else None} "
            f"({len(trials)} trials); run more trials, or export one by its number",
            subject="trial_number",
        )
    return best


def export_document(study: optuna.Study, trial: FrozenTrial, storage_url: str) -> ExportDocument:
    """Every TrainConfig field, the trial's measures and where they came from."""
    r = TrialRecord.of(trial)
    record = study_record(study)
    assert r.config is not None  # pick_trial returns trials that trained
    finished = trial.datetime_complete
    return ExportDocument(
        config=r.config,
        metrics=TrialResult.of(r),
        study=ExportedStudy(
            name=study.study_name,
            storage=shown_url(storage_url),  # the export is shared: never its password
            trial=trial.number,
            state=trial.state.name,
            target=record.target if record else None,
            objective=record.objective if record else None,
            clock_kind=record.clock if record else None,
        ),
        # The study's step clock: a retrain prices its own steps in it, and another study can reuse it.
        clock=record.clock_table if record else None,
        confirmation=confirmed_times(confirmation_of(study), trial.number),
        provenance=Provenance(
            seed=r.seed,
            device=r.device,
            threads=r.threads,
            data_checksum=r.data_checksum,
            trial_versions=r.versions,
            trial_finished=finished.isoformat(sep=" ", timespec="seconds") if finished else None,
            exported=now_text(),
            exported_with=library_versions(),
        ),
    )


def confirmed_times(race: Confirmation | None, number: int) -> ConfirmedTimes | None:
    """The trial's times on the confirmation's fresh seeds, if it was raced."""
    if race is None or number not in race.candidates or not race.runs_of(number):
        return None
    c = race.summary(number)
    return ConfirmedTimes(
        winner=race.incumbent == number and race.done,
        seeds=[r.seed for r in c.runs],
        seconds=[r.seconds for r in c.runs],
        at_least=[_finite(r.lower_bound) for r in c.runs],
        median=_finite(c.median),
        low=_finite(c.low),
        high=_finite(c.high),
        exact=c.exact,
        median_exact=c.median_exact,
        dropped=c.dropped,
    )


def _finite(seconds: float) -> float | None:
    return seconds if math.isfinite(seconds) else None
