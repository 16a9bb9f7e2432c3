"""`lenet-search optimize` end to end through the real entry point, on tiny synthetic data."""

import math

import optuna
import pytest
from optuna.trial import TrialState

from search.records.study import study_record
from search.records.trial import TrialRecord
from tests.search.cli_helpers import assert_one_line_error, run_cli


def _optimize(tiny, storage, *extra):
    return run_cli(*tiny.optimize_args(storage, *extra))


def _trials(storage, name="lenet5-cifar10"):
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def test_study_runs_to_n_and_records_everything(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    result = _optimize(tiny, storage, "--trials", "5")
    assert result.code == 0, result.err
    trials = _trials(storage)
    assert len(trials) == 5 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert complete, "the synthetic task is easy: some trial must reach 0.6"
    for t in trials:
        r = TrialRecord.of(t)
        assert r.config.max_epochs == 4 and r.target == 0.6 and r.device == "cpu"
        assert r.threads >= 1 and r.data_checksum and "torch" in r.versions
        assert r.config.evals_per_epoch == 2 and r.curve[0]["epoch"] == pytest.approx(0.5, abs=0.05)
        # intermediate values are the validation error at the end of each epoch, for the
        # dashboard's curves; the curve also holds the evaluations within epochs
        ends = {int(p["epoch"]): 1 - p["val_accuracy"] for p in r.curve if p["epoch"].is_integer()}
        values = dict(t.intermediate_values)
        if t.state == TrialState.PRUNED:
            # A trial that missed the target ends with a NaN after its last step, so that it has
            # no value (optuna-dashboard would plot its last validation error as its time).
            marker = max(values)
            assert math.isnan(values.pop(marker)) and marker == int(r.curve[-1]["epoch"]) + 1
            assert t.value is None
        assert values == pytest.approx(ends)
        assert r.outcome in (
            "reached",
            "diverged",
            "cannot_win",
            "underfit",
            "plateau",
            "out_of_reach",
            "behind",
            "budget",
        )
        assert r.reason
        # the cannot-win rule's lower bound on the time to target, for the sampler
        assert (r.capped_at is not None) == (r.outcome == "cannot_win")
    for t in complete:
        r = TrialRecord.of(t)
        assert t.value == r.clock_seconds_to_target and r.curve[-1]["val_accuracy"] >= 0.6
        assert r.outcome == "reached" and r.value == t.value
    best = min(complete, key=lambda t: t.value)
    assert f"best of the search: trial {best.number} reached 0.6000 in {best.value:.1f} s" in result.out
    assert "lenet-search dashboard" in result.out and "lenet-search export" in result.out
    # Trial 0 is the baseline: train's defaults where the tiny space allows them (its lr and
    # batch sizes exclude 0.05 and 128, so those were drawn).
    first = trials[0]
    assert TrialRecord.of(first).baseline is True
    assert {k: first.params[k] for k in ("momentum", "step_size", "gamma")} == {
        "momentum": 0.9,
        "step_size": 4,
        "gamma": 0.3,
    }
    assert not any(TrialRecord.of(t).baseline for t in trials[1:])


def test_no_baseline_draws_every_trial(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _optimize(tiny, storage, "--trials", "2", "--no-baseline").code == 0
    trials = _trials(storage)
    assert not any(TrialRecord.of(t).baseline for t in trials)
    assert trials[0].params["momentum"] != 0.9


def test_trials_is_the_total_so_a_rerun_finishes_the_rest(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _optimize(tiny, storage, "--trials", "3").code == 0
    first = {t.number: t.datetime_complete for t in _trials(storage)}
    assert _optimize(tiny, storage, "--trials", "3").code == 0
    assert len(_trials(storage)) == 3  # already complete: nothing more
    assert _optimize(tiny, storage, "--trials", "5").code == 0
    trials = _trials(storage)
    assert len(trials) == 5
    assert {t.number: t.datetime_complete for t in trials if t.number in first} == first  # untouched


def test_two_jobs_give_exactly_n_trials(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    result = _optimize(tiny, storage, "--trials", "6", "--jobs", "2")
    assert result.code == 0, result.err
    trials = _trials(storage)
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == 6
    assert len({t.number for t in finished}) == 6
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    assert {TrialRecord.of(t).threads for t in finished} == {1}  # 2 cores / 2 jobs


def test_target_mismatch_is_refused_and_writes_nothing(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _optimize(tiny, storage, "--trials", "1").code == 0
    args = tiny.optimize_args(storage, "--trials", "3")
    args[args.index("--target") + 1] = "0.8"
    assert_one_line_error(run_cli(*args), "has target 0.6, not 0.8")
    assert len(_trials(storage)) == 1
    # Time to target measured at other evaluations would not be comparable either.
    args = tiny.optimize_args(storage, "--trials", "3", "--evals-per-epoch", "1")
    assert_one_line_error(run_cli(*args), "evals_per_epoch 2 (this run: 1)")
    assert len(_trials(storage)) == 1


def test_without_target_the_stored_one_is_used(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert _optimize(tiny, storage, "--trials", "1").code == 0
    args = tiny.optimize_args(storage, "--trials", "2")
    i = args.index("--target")
    del args[i : i + 2]
    result = run_cli(*args)
    assert result.code == 0, result.err
    assert [TrialRecord.of(t).target for t in _trials(storage)] == [0.6, 0.6]


@pytest.mark.parametrize(
    "args,fragments",
    [
        (["--trials", "0"], ["--trials", "x>=1"]),
        (["--trials", "-3"], ["--trials"]),
        (["--jobs", "0"], ["--jobs", "x>=1"]),
        (["--sampler", "bayes"], ["'bayes' is not one of"]),
        (["--pruner", "sometimes"], ["'sometimes' is not one of"]),
        (["--target", "1.5"], ["the target must be a validation accuracy in (0, 1), got 1.5 (--target)"]),
        (["--target", "0"], ["(0, 1)"]),
        (["--target", "high"], ["the target must be a number", "(--target)"]),
        (["--storage", "nosuchdb://x"], ["cannot be parsed"]),
        (["--storage", "postgresql://nobody@127.0.0.1:1/none"], ["cannot be reached"]),
        (["--space", "missing.toml"], ["cannot read space file missing.toml"]),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(tmp_path, tiny, monkeypatch, args, fragments):
    monkeypatch.chdir(tmp_path)
    result = run_cli("optimize", "--data", tiny.archive, "--val-size", "200", "--quiet", *args)
    assert_one_line_error(result, *fragments)
    assert list(tmp_path.iterdir()) == []  # not even the default studies/lenet.db


def test_bad_space_file_writes_nothing(tmp_path, tiny, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = { low = 1.0, high = 0.1 }")
    result = run_cli("optimize", "--data", tiny.archive, "--space", bad, "--quiet")
    assert_one_line_error(result, "lr: `low <= high` must hold, but got (low=1.0, high=0.1)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_target_auto_calibrates_once_and_is_stored(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    args = tiny.optimize_args(storage, "--trials", "1")
    args[args.index("--target") + 1] = "auto"
    assert run_cli(*args).code == 0
    study = optuna.load_study(study_name="lenet5-cifar10", storage=storage)
    target, source = study_record(study).target, study_record(study).target_source
    assert source.startswith("auto: plateau ") and 0.1 < target < 1
    plateau = float(source.split()[2])
    assert target == pytest.approx(round(plateau - 0.015, 4))
    # reopening with --target auto keeps the stored target instead of calibrating again
    args2 = tiny.optimize_args(storage, "--trials", "2")
    args2[args2.index("--target") + 1] = "auto"
    assert run_cli(*args2).code == 0
    assert [TrialRecord.of(t).target for t in _trials(storage)] == [target, target]


def test_patience_stops_the_search_early_says_why_and_holds_when_run_again(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    args = ("--trials", "40", "--patience", "2", "--confirm", "1", "--confirm-seeds", "1")
    result = _optimize(tiny, storage, *args)
    assert result.code == 0, result.err
    finished = [t for t in _trials(storage) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert 3 <= len(finished) < 40
    line = next(line for line in result.out.splitlines() if line.startswith("search stopped after"))
    assert line.startswith(f"search stopped after {len(finished)} trials: the last 2 (its patience)")
    # The last two trials did not beat the best by 1 %; the one before them did.
    best = min(t.value for t in finished if t.state == TrialState.COMPLETE)
    assert all(t.value is None or t.value >= 0.99 * best for t in finished[-2:])
    assert "confirmed on fresh seeds" in result.out and "  winner trial" in result.out
    again = _optimize(tiny, storage, *args)
    assert again.code == 0, again.err
    assert len([t for t in _trials(storage) if t.state != TrialState.FAIL]) == len(finished)
    # Without patience the same study goes on to its trials.
    more = _optimize(tiny, storage, "--trials", str(len(finished) + 2), "--confirm", "0")
    assert more.code == 0, more.err
    assert (
        len([t for t in _trials(storage) if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]) == len(finished) + 2
    )
