"""export, and train --config on the exported file."""

import json

import optuna
from optuna.trial import TrialState

from lenet.config import TrainConfig
from search.confirm.race import confirmation_of
from search.records.trial import TrialRecord
from tests.search.cli_helpers import assert_one_line_error, run_cli


def _best(storage):
    """What export writes by default: the confirmed winner (the search's best when none was raced)."""
    study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
    race = confirmation_of(study)
    if race is not None and race.done:
        return study.trials[race.incumbent]
    return min((t for t in study.trials if t.state == TrialState.COMPLETE), key=lambda t: t.value)


def test_export_best_trial(tmp_path, finished_study):
    out = tmp_path / "best.json"
    result = run_cli("export", "--storage", finished_study, "-o", out)
    assert result.code == 0, result.err
    doc = json.loads(out.read_text())
    best = _best(finished_study)
    assert doc["study"]["trial"] == best.number and doc["study"]["target"] == 0.6
    assert TrainConfig.from_dict(doc["config"], require_all=True).to_dict() == TrialRecord.of(best).config.to_dict()
    assert doc["metrics"]["seconds_to_target"] == best.value
    assert doc["metrics"]["best_val_accuracy"] >= 0.6
    prov = doc["provenance"]
    assert prov["seed"] == 0 and prov["device"] == "cpu" and prov["data_checksum"] and prov["exported"]
    assert "torch" in prov["trial_versions"]
    assert f"exported trial {best.number}" in result.out


def test_export_a_chosen_pruned_trial(tmp_path, finished_study):
    study = optuna.load_study(study_name="lenet5-cifar10", storage=finished_study)
    number = study.trials[-1].number
    out = tmp_path / "t.json"
    assert run_cli("export", "--storage", finished_study, "--trial", number, "-o", out).code == 0
    assert json.loads(out.read_text())["study"]["trial"] == number


def test_retrain_from_export_prints_time_to_target_and_writes_outputs(tmp_path, finished_study, tiny):
    export = tmp_path / "best.json"
    run_cli("export", "--storage", finished_study, "-o", export)
    run = tmp_path / "run"
    result = run_cli(*tiny.retrain_args(export), "--seed", "1", "--out", run, "--quiet")
    assert result.code == 0, result.err
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["target"] == 0.6 and metrics["config"]["seed"] == 1
    assert metrics["config"]["lr"] == json.loads(export.read_text())["config"]["lr"]
    assert "target 0.6000: reached after" in result.out or "target 0.6000: not reached" in result.out
    png = (run / "curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert (run / "model.pt").stat().st_size > 200_000  # 62,006 float32 weights


def test_export_errors(tmp_path, finished_study):
    assert_one_line_error(
        run_cli("export", "--storage", finished_study, "--study", "nope", "-o", tmp_path / "x.json"),
        "no study named 'nope'",
    )
    assert_one_line_error(
        run_cli("export", "--storage", finished_study, "--trial", "999", "-o", tmp_path / "x.json"), "has no trial 999"
    )
    empty = f"sqlite:///{tmp_path}/empty.db"
    optuna.create_study(study_name="lenet5-cifar10", storage=empty)
    assert_one_line_error(run_cli("export", "--storage", empty, "-o", tmp_path / "x.json"), "has no trials yet")
    assert not (tmp_path / "x.json").exists()


def test_export_when_nothing_reached_the_target(tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(study_name="lenet5-cifar10", storage=storage)
    study.set_user_attr("target", 0.9)
    trial = study.ask()
    study.tell(trial, state=TrialState.PRUNED)
    result = run_cli("export", "--storage", storage, "-o", tmp_path / "x.json")
    assert_one_line_error(result, "no trial of study 'lenet5-cifar10' reached its target 0.9")
