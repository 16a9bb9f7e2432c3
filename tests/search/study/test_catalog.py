"""studies (list, show, delete) and report on a small finished study."""

import optuna
import pytest

from tests.search.cli_helpers import assert_one_line_error, run_cli


def test_list(finished_study):
    result = run_cli("studies", "--storage", finished_study)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="lenet5-cifar10", storage=finished_study)
    line = next(line for line in result.out.splitlines() if line.startswith("lenet5-cifar10"))
    complete = sum(1 for t in study.trials if t.state.name == "COMPLETE")
    assert line.split()[1:4] == ["6", str(complete), str(6 - complete)]
    assert "0.6000" in line and f"{study.best_value:.1f}" in line


def test_show_lists_top_trials_best_first(finished_study):
    result = run_cli("studies", "show", "lenet5-cifar10", "--storage", finished_study, "--top", "3")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[1].startswith("clock: calibrated on cpu")
    assert lines[2].startswith("measured / calibrated seconds per batch size: ")
    header = next(i for i, line in enumerate(lines) if line.startswith("trial state"))
    rows = [line for line in lines[header + 1 :] if line.strip()]
    assert len(rows) == 3
    study = optuna.load_study(study_name="lenet5-cifar10", storage=finished_study)
    assert rows[0].split()[0] == str(study.best_trial.number)


def test_delete_asks_and_yes_deletes(tmp_path):
    storage = f"sqlite:///{tmp_path}/d.db"
    optuna.create_study(study_name="old", storage=storage)
    result = run_cli("studies", "delete", "old", "--storage", storage)  # no stdin: not confirmed
    assert "nothing deleted" in result.out or result.code != 0
    assert [s.study_name for s in optuna.get_all_study_summaries(storage)] == ["old"]
    result = run_cli("studies", "delete", "old", "--storage", storage, "--yes")
    assert result.code == 0 and "deleted study 'old'" in result.out
    assert optuna.get_all_study_summaries(storage) == []
    assert_one_line_error(run_cli("studies", "delete", "old", "--storage", storage, "--yes"), "no study named 'old'")


def test_report_writes_html_and_pngs(tmp_path, finished_study):
    out = tmp_path / "report"
    result = run_cli("report", "--storage", finished_study, "-o", out)
    assert result.code == 0, result.err
    for name in ("history.png", "curves.png", "lr_schedules.png", "outcomes.png", "index.html"):
        assert (out / name).stat().st_size > 1000, name
    html = (out / "index.html").read_text()
    assert "Study lenet5-cifar10" in html and "data:image/png;base64," in html
    assert "Target validation accuracy: <b>0.6</b>" in html
    study = optuna.load_study(study_name="lenet5-cifar10", storage=finished_study)
    assert f"<td>{study.best_trial.number}</td><td>complete</td><td>{study.best_value:.1f}</td>" in html


def test_importances_rest_on_more_than_the_completed_trials():
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from search.records.trial import CURVE
    from search.views.importance import accuracy_importances

    dist = {"lr": FloatDistribution(0.001, 0.3, log=True), "momentum": FloatDistribution(0.5, 0.98)}
    trials = []
    for i in range(12):  # accuracy rises with lr, momentum is noise; trial i stops at 2 + i seconds
        lr, mom = 0.001 * (1.5**i), 0.5 + 0.04 * ((7 * i) % 12)
        curve = [{"train_seconds": s, "val_accuracy": min(0.7, 0.1 + s * lr * 3), "epoch": s} for s in range(1, 3 + i)]
        done = i in (10, 11)
        trials.append(
            create_trial(
                state=TrialState.COMPLETE if done else TrialState.PRUNED,
                value=5.0 if done else None,
                params={"lr": lr, "momentum": mom},
                distributions=dist,
                user_attrs={CURVE: curve},
            )
        )
    importances = accuracy_importances(trials)
    # T: half the trials trained this long (median of the last points, 2..13 s); those that
    # stopped earlier are left out; the two completed ones count.
    assert importances.seconds == 7.5 and importances.trials == 6
    assert importances.values["lr"] > importances.values["momentum"]
    assert sum(importances.values.values()) == pytest.approx(1.0)
    assert accuracy_importances(trials[:4]) is None  # too few to say anything
