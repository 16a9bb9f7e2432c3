"""Exporting a trial as a config file that `lenet-search train --config` retrains."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna

from lenet.atomic import atomic_write
from lenet.train import TrainConfig
from search.provenance import library_versions, now_text
from search.trials import best_completed

EXPORT_FORMAT = "lenet-search/export-v1"


class ExportError(ValueError):
    """Nothing exportable: an empty study, no trial at the target, an unknown trial."""


def pick_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        match = [t for t in trials if t.number == number]
        if not match:
            raise ExportError(f"study {study.study_name!r} has no trial {number} (it has {len(trials)} trials)")
        if "config" not in match[0].user_attrs:
            raise ExportError(f"trial {number} of study {study.study_name!r} never started training")
        return match[0]
    best = best_completed(trials)
    if best is None:
        if not trials:
            raise ExportError(f"study {study.study_name!r} has no trials yet; run `lenet-search optimize` first")
        raise ExportError(
            f"no trial of study {study.study_name!r} reached its target {study.user_attrs.get('target')} "
            f"({len(trials)} trials); run more trials, or export one with --trial N"
        )
    return best


def export_document(study: optuna.Study, trial: optuna.trial.FrozenTrial, storage_url: str) -> dict[str, Any]:
    """Every TrainConfig field, the trial's measures and where they came from."""
    attrs = trial.user_attrs
    config = TrainConfig.from_dict(attrs["config"])  # validates what the study holds
    return {
        "format": EXPORT_FORMAT,
        "config": config.to_dict(),
        "metrics": {
            "seconds_to_target": attrs.get("seconds_to_target"),
            "epochs_to_target": attrs.get("epochs_to_target"),
            "images_to_target": attrs.get("images_to_target"),
            "best_val_accuracy": attrs.get("best_val_accuracy"),
            "train_seconds": attrs.get("train_seconds"),
            "outcome": attrs.get("outcome"),
            "reason": attrs.get("reason"),
        },
        "study": {
            "name": study.study_name,
            "storage": storage_url,
            "trial": trial.number,
            "state": trial.state.name,
            "target": study.user_attrs.get("target"),
            "objective": study.user_attrs.get("objective"),
        },
        "provenance": {
            "seed": attrs.get("seed"),
            "device": attrs.get("device"),
            "threads": attrs.get("threads"),
            "data_checksum": attrs.get("data_checksum"),
            "trial_versions": attrs.get("versions"),
            "trial_finished": trial.datetime_complete.isoformat(sep=" ", timespec="seconds")
            if trial.datetime_complete
            else None,
            "exported": now_text(),
            "exported_with": library_versions(),
        },
    }


def write_json(path: Path, document: dict[str, Any]) -> None:
    """Write atomically: an interrupted export never leaves half a file."""
    text = json.dumps(document, indent=2) + "\n"
    atomic_write(path, lambda fh: fh.write(text.encode()))
