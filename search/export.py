"""Exporting a trial as a config file that `lenet-search train --config` retrains."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import optuna

from lenet.atomic import atomic_write
from lenet.errors import InputError
from search.confirm import confirmation_of
from search.provenance import library_versions, now_text
from search.record import TrialRecord, study_record
from search.storage import opened
from search.study import load_existing
from search.trials import best_completed

EXPORT_FORMAT = "lenet-search/export-v1"


class ExportError(InputError):
    """Nothing exportable: an empty study, no trial at the target, an unknown trial."""


def export_trial(
    storage_url: str, study_name: str, number: int | None, output: Path
) -> tuple[TrialRecord, dict[str, Any] | None]:
    """Write the confirmed winner of the study (else its best trial, or trial `number`) to
    `output`; returns its record and its confirmation, if it was raced."""
    with opened(storage_url) as storage:
        study = load_existing(storage, study_name)
        trial = pick_trial(study, number)
        document = export_document(study, trial, storage_url)
    write_json(output, document)
    return TrialRecord.of(trial), document["confirmation"]


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        match = [t for t in trials if t.number == number]
        if not match:
            raise ExportError(f"study {study.study_name!r} has no trial {number} (it has {len(trials)} trials)")
        if TrialRecord.of(match[0]).config is None:
            raise ExportError(f"trial {number} of study {study.study_name!r} never started training")
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
            f"({len(trials)} trials); run more trials, or export one with --trial N"
        )
    return best


def export_document(study: optuna.Study, trial: optuna.trial.FrozenTrial, storage_url: str) -> dict[str, Any]:
    """Every TrainConfig field, the trial's measures and where they came from."""
    r = TrialRecord.of(trial)
    record = study_record(study)
    assert r.config is not None  # pick_trial returns trials that trained
    return {
        "format": EXPORT_FORMAT,
        "config": r.config.to_dict(),
        "metrics": {
            "seconds_to_target": r.seconds_to_target,
            "measured_seconds_to_target": r.measured_seconds_to_target,
            "epochs_to_target": r.epochs_to_target,
            "images_to_target": r.images_to_target,
            "best_val_accuracy": r.best_val_accuracy,
            "train_seconds": r.train_seconds,
            "outcome": r.outcome,
            "reason": r.reason,
        },
        "study": {
            "name": study.study_name,
            "storage": storage_url,
            "trial": trial.number,
            "state": trial.state.name,
            "target": record.target if record else None,
            "objective": record.objective if record else None,
            "clock_kind": record.clock if record else None,
        },
        # The study's step clock: a retrain prices its own steps in it, and another study can
        # reuse it (optimize --clock-from this file).
        "clock": record.clock_table if record else None,
        "confirmation": _confirmed(study, trial.number),
        "provenance": {
            "seed": r.seed,
            "device": r.device,
            "threads": r.threads,
            "data_checksum": r.data_checksum,
            "trial_versions": r.versions,
            "trial_finished": trial.datetime_complete.isoformat(sep=" ", timespec="seconds")
            if trial.datetime_complete
            else None,
            "exported": now_text(),
            "exported_with": library_versions(),
        },
    }


def _confirmed(study: optuna.Study, number: int) -> dict[str, Any] | None:
    """The trial's times on the confirmation's fresh seeds, if it was raced."""
    race = confirmation_of(study)
    if race is None or number not in race.candidates or not race.runs_of(number):
        return None
    c = race.summary(number)
    return {
        "winner": race.incumbent == number and race.done,
        "seeds": [r.seed for r in c.runs],
        "seconds": [r.seconds for r in c.runs],
        # null: never reached the target within the epoch budget (JSON has no infinity)
        "at_least": [_finite(r.lower_bound) for r in c.runs],
        "median": _finite(c.median),
        "low": _finite(c.low),
        "high": _finite(c.high),
        "exact": c.exact,
        "median_exact": c.median_exact,
        "dropped": c.dropped,
    }


def _finite(seconds: float) -> float | None:
    return seconds if math.isfinite(seconds) else None


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: an interrupted export never leaves half a file."""
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))
