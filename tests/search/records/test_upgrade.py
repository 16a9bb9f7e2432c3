"""Stored data of older versions reads as today's: the formats' history (search/records/upgrade.py),
and a study database and an export that commit 98e3d84 wrote (tests/data/), opened by every command."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.confirm.race import confirmation_of
from search.records.export import ExportDocument
from search.records.study import StudyRecord, study_record
from search.records.trial import TrialRecord, curve_of
from search.records.upgrade import upgrade_export, upgrade_study, upgrade_trial
from tests.search.cli_helpers import run_cli

DATA = Path(__file__).resolve().parents[2] / "data"
OLD_DB, OLD_EXPORT = DATA / "study-98e3d84.db", DATA / "export-98e3d84.json"


def test_curves_and_results_from_before_the_step_clock_read_in_measured_seconds():
    # eadf030 added clock_seconds; before e87432a a curve had no epochs (one evaluation an epoch).
    old = {
        "curve": [{"train_seconds": 2.0, "val_accuracy": 0.3}, {"train_seconds": 4.0, "val_accuracy": 0.5}],
        "train_seconds": 4.0,
        "outcome": "budget",
    }
    new = upgrade_trial(old)
    assert [(p["clock_seconds"], p["epoch"]) for p in new["curve"]] == [(2.0, 1.0), (4.0, 2.0)]
    assert new["clock_seconds"] == 4.0
    assert "clock_seconds" not in old["curve"][0]  # the stored data is never changed
    current = {"curve": [{"train_seconds": 2.0, "clock_seconds": 1.5, "epoch": 0.5, "val_accuracy": 0.3}]}
    assert upgrade_trial(current) is current  # today's attributes are read as they are


def test_studies_from_before_the_schema_version_are_upgraded():
    old = {
        "target": 0.6,
        "space": {"max_epochs": 4, "params": {}},
        "confirmation": {
            "seeds": [1],
            "candidates": [3],
            "runs": [
                {
                    "trial": 3,
                    "seed": 1,
                    "seconds": None,
                    "cap": 2.0,
                    "stopped_at_cap": True,
                    "measured": None,
                    "epochs": 1.0,
                    "rerun": True,
                }
            ],
        },
    }
    new = upgrade_study(old)
    assert new["space"]["evals_per_epoch"] == 1  # e87432a: studies before evaluated once an epoch
    assert new["confirmation"]["runs"][0]["bounded"] is True and "rerun" not in new["confirmation"]["runs"][0]
    record = StudyRecord.of(old)
    assert record.schema == 1 and record.clock == "measured" and record.jobs == 1
    assert upgrade_study(new) is new  # a study in today's form is read as stored
    assert upgrade_export({"confirmation": {"exact": False}})["confirmation"]["median_exact"] is False


def _old_study(tmp_path) -> str:
    db = tmp_path / "old.db"
    shutil.copy(OLD_DB, db)
    return f"sqlite:///{db}"


def test_a_study_written_by_98e3d84_reads_as_it_was_stored(tmp_path):
    storage = _old_study(tmp_path)
    study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
    record = study_record(study)
    assert record.schema == 1 and record.clock == "calibrated" and record.target == 0.6
    assert record.step_clock() is not None and set(record.step_clock().costs) == {"32", "64"}
    con = sqlite3.connect(tmp_path / "old.db")
    raw = {
        (n, k): json.loads(v)
        for n, k, v in con.execute(
            "select t.number, a.key, a.value_json from trial_user_attributes a join trials t using (trial_id)"
        )
    }
    for t in study.trials:
        r = TrialRecord.of(t)
        assert r.outcome == raw[t.number, "outcome"] and r.reason == raw[t.number, "reason"]
        assert (
            r.clock_seconds == raw[t.number, "clock_seconds"] and r.measured_seconds == raw[t.number, "train_seconds"]
        )
        assert r.clock_seconds_to_target == raw[t.number, "seconds_to_target"]
        assert r.curve == raw[t.number, "curve"] == curve_of(t)
        assert (t.state == TrialState.COMPLETE) == (r.value is not None)
    race = confirmation_of(study)
    assert race.done and race.incumbent == 0 and len(race.runs) == 6


def test_every_command_opens_a_study_written_by_98e3d84(tmp_path, tiny):
    storage = _old_study(tmp_path)
    listed = run_cli("studies", "--storage", storage)
    assert listed.code == 0 and "lenet5-cifar10" in listed.out and "reached 2" in listed.out
    shown = run_cli("studies", "show", "lenet5-cifar10", "--storage", storage)
    assert shown.code == 0 and "winner trial   0: median 0.3 s" in shown.out
    export = tmp_path / "best.json"
    exported = run_cli("export", "--storage", storage, "-o", export)
    assert exported.code == 0 and "exported trial 0" in exported.out
    assert json.loads(export.read_text())["confirmation"]["median"] == pytest.approx(0.2684969040010401)
    report = run_cli("report", "--storage", storage, "-o", tmp_path / "report")
    assert report.code == 0 and (tmp_path / "report" / "index.html").is_file()
    # The same search reopened: two more trials in the study's own clock, the old ones untouched.
    before = [
        (t.number, t.state, t.value) for t in optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials
    ]
    args = tiny.optimize_args(storage, "--trials", "8", "--confirm", "0")
    args = args[: args.index("--clock-from")] + args[args.index("--clock-from") + 2 :]
    resumed = run_cli(*args)
    assert resumed.code == 0, resumed.err
    after = optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials
    assert [(t.number, t.state, t.value) for t in after[: len(before)]] == before
    assert len([t for t in after if t.state.is_finished()]) == 8


def test_an_export_written_by_98e3d84_retrains_and_lends_its_clock(tmp_path, tiny):
    document = ExportDocument.from_dict(json.loads(OLD_EXPORT.read_text()), str(OLD_EXPORT))
    assert document.study.trial == 0 and document.confirmation.winner and document.clock is not None
    old, new = json.loads(OLD_EXPORT.read_text()), document.to_dict()
    assert all(new[section] == value or value.items() <= new[section].items() for section, value in old.items())
    result = run_cli(*tiny.retrain_args(OLD_EXPORT), "--stop-at-target", "--seed", "1000", "--quiet", "--json")
    assert result.code == 0, result.err
    metrics = json.loads(result.out)
    # Confirmation seed 1000 of the exported trial, retrained and priced in the export's clock: its
    # time there (the same on the machine that wrote it; another CPU's arithmetic may move a crossing).
    assert metrics["clock_seconds_to_target"] == pytest.approx(document.confirmation.seconds[0], rel=0.5)
    storage = f"sqlite:///{tmp_path}/new.db"
    args = tiny.optimize_args(storage, "--trials", "1", "--confirm", "0")
    args[args.index("--clock-from") + 1] = str(OLD_EXPORT)
    assert run_cli(*args).code == 0
    assert study_record(optuna.load_study(study_name="lenet5-cifar10", storage=storage)).clock_table == document.clock
