"""The study's clock end to end on tiny synthetic data: calibrated when a study is created (or
reused), every value priced by it, reproducible studies, refusals on reopen, retrains priced."""

import json

import optuna
import pytest
from optuna.trial import TrialState

from lenet.clock import StepClock, StepCost
from lenet.config import TrainConfig
from lenet.curve import EvalRecord, first_crossing
from search.clock.agreement import ClockAgreement, agreement_lines
from search.clock.pricing import time_to_target
from search.confirm.race import confirmation_of
from search.records.keys import POINT_CLOCK_SECONDS
from search.records.study import step_clock, study_record
from search.records.trial import TrialRecord
from tests.search.cli_helpers import assert_one_line_error, run_cli
from tests.synthetic import eval_record


def _study(storage, name="lenet5-cifar10"):
    return optuna.load_study(study_name=name, storage=storage)


def _without(args, flag, takes_value=True):
    i = args.index(flag)
    return args[:i] + args[i + 1 + int(takes_value) :]


def _signature(storage):
    """Everything that must repeat: parameters, states, values, outcomes, reasons."""
    return [
        (
            t.number,
            t.params,
            t.state,
            t.value,
            TrialRecord.of(t).outcome,
            TrialRecord.of(t).reason,
            TrialRecord.of(t).capped_at,
        )
        for t in _study(storage).trials
    ]


def test_a_study_with_the_same_seed_and_clock_is_the_same_study(tmp_path, tiny):
    # TPE and the saturation pruner, as by default: every decision rests on the clock's seconds.
    args = ["--trials", "10", "--max-epochs", "3"]
    first, second = f"sqlite:///{tmp_path}/a.db", f"sqlite:///{tmp_path}/b.db"
    assert run_cli(*tiny.optimize_args(first, *args)).code == 0
    assert run_cli(*tiny.optimize_args(second, *args)).code == 0
    a, b = _signature(first), _signature(second)
    assert a == b
    # The confirmation race too: the same runs, stops and winner (measured seconds aside).
    races = [confirmation_of(_study(s)) for s in (first, second)]
    assert [(r.trial, r.seed, r.seconds, r.cap, r.stopped_at_cap) for r in races[0].runs] == [
        (r.trial, r.seed, r.seconds, r.cap, r.stopped_at_cap) for r in races[1].runs
    ]
    assert races[0].incumbent == races[1].incumbent and races[0].runs
    assert any(s == TrialState.PRUNED for _, _, s, *_ in a) and any(s == TrialState.COMPLETE for _, _, s, *_ in a)
    # The measured seconds differ from run to run; the values do not.
    measured = [TrialRecord.of(t).measured_seconds for t in _study(first).trials]
    assert measured != [TrialRecord.of(t).measured_seconds for t in _study(second).trials]


def test_a_new_study_calibrates_its_clock_and_prices_every_trial_with_it(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    args = _without(tiny.optimize_args(storage, "--trials", "3"), "--clock-from")
    result = run_cli(*args)
    assert result.code == 0, result.err
    record = study_record(_study(storage))
    clock = step_clock(record)
    assert record.clock == "calibrated" and set(clock.costs) == {"32", "64"} and clock.train_size == 800
    for t in _study(storage).trials:
        r = TrialRecord.of(t)
        priced = [clock.seconds_for(r.config.batch_size, False, p["step"]) for p in r.curve]
        assert [p[POINT_CLOCK_SECONDS] for p in r.curve] == pytest.approx(priced)
        assert r.clock_seconds == pytest.approx(priced[-1])
        if t.state == TrialState.COMPLETE:
            # The value: the crossing of the target, interpolated in the clock's seconds.
            history = [EvalRecord(**{k: v for k, v in p.items() if k != "clock_seconds"}) for p in r.curve]
            cross = first_crossing(history, 0.6)
            batch = r.config.batch_size
            assert t.value == pytest.approx(cross.interpolate(lambda e, b=batch: clock.seconds_for(b, False, e.step)))
            assert r.measured_seconds_to_target == pytest.approx(cross.interpolate(lambda e: e.train_seconds))


def test_the_measured_clock_values_trials_in_measured_seconds(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    args = _without(tiny.optimize_args(storage, "--trials", "3", "--clock", "measured"), "--clock-from")
    assert run_cli(*args).code == 0
    record = study_record(_study(storage))
    assert record.clock == "measured" and record.clock_table is None
    for t in _study(storage).trials:
        r = TrialRecord.of(t)
        assert [p[POINT_CLOCK_SECONDS] for p in r.curve] == [p["train_seconds"] for p in r.curve]
        if t.state == TrialState.COMPLETE:
            assert t.value == r.measured_seconds_to_target == r.clock_seconds_to_target


def test_reopening_keeps_the_studys_clock(tmp_path, tiny):
    storage = f"sqlite:///{tmp_path}/s.db"
    assert run_cli(*tiny.optimize_args(storage, "--trials", "1")).code == 0
    assert_one_line_error(
        run_cli(*tiny.optimize_args(storage, "--trials", "2", "--clock", "measured")),
        "keeps its seconds in the calibrated clock",
    )
    other = tmp_path / "other.json"
    table = json.loads(tiny.clock.read_text())
    table["costs"]["32"]["full"] *= 2
    other.write_text(json.dumps(table))
    args = tiny.optimize_args(storage, "--trials", "2")
    args[args.index("--clock-from") + 1] = str(other)
    assert_one_line_error(run_cli(*args), "has its own step clock")
    assert len(_study(storage).trials) == 1
    # Reused from the study itself, by name, for a new study: the same table.
    args[args.index("--clock-from") + 1] = "study:lenet5-cifar10"
    assert run_cli(*args, "--study", "again").code == 0
    assert study_record(_study(storage, "again")).clock_table == study_record(_study(storage)).clock_table


def test_a_clock_that_does_not_cover_the_space_is_refused(tmp_path, tiny):
    table = json.loads(tiny.clock.read_text())
    del table["costs"]["64"]
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps(table))
    args = tiny.optimize_args(f"sqlite:///{tmp_path}/s.db", "--trials", "1")
    args[args.index("--clock-from") + 1] = str(partial)
    assert_one_line_error(run_cli(*args), "has no cost for 64")
    assert not (tmp_path / "s.db").exists() or not optuna.get_all_study_summaries(f"sqlite:///{tmp_path}/s.db")


def test_an_export_carries_the_clock_and_a_retrain_is_priced_in_it(tmp_path, finished_study, tiny):
    export = tmp_path / "best.json"
    assert run_cli("export", "--storage", finished_study, "-o", export).code == 0
    doc = json.loads(export.read_text())
    assert StepClock.from_dict(doc["clock"]) == step_clock(study_record(_study(finished_study)))
    assert doc["metrics"]["measured_seconds_to_target"] is not None
    result = run_cli(*tiny.retrain_args(export), "--stop-at-target", "--json")
    assert result.code == 0, result.err
    metrics = json.loads(result.out)
    # Same config and seed, same steps: the same seconds in the study's clock as the trial.
    assert metrics["clock_seconds_to_target"] == pytest.approx(doc["metrics"]["seconds_to_target"])
    text = run_cli(*tiny.retrain_args(export), "--stop-at-target", "--quiet", "--out", tmp_path / "run")
    assert "in the study's clock:" in text.out and "(+0 % here)" in text.out


def test_clocks_that_part_are_warned_about():
    rows = [ClockAgreement(128, 10, 1.02, 0.95, 1.1), ClockAgreement(512, 4, 1.6, 1.5, 1.7)]
    lines = agreement_lines(rows)
    assert lines[0].startswith("measured / calibrated seconds per batch size: 128: 1.02 (0.95-1.10, 10 trials)")
    assert len(lines) == 2 and "at batch size 512 trials took 1.60x the calibrated time" in lines[1]


def test_time_to_target_is_the_crossing_in_every_unit():
    # 11 steps an epoch at batch 100 of 1,050 images: 1 s a full step, 0.5 s the partial one.
    clock = StepClock("cpu", 2, 1050, {"100": StepCost(full=1.0, partial=0.5, partial_size=50, spread=0.0)}, rounds=3)
    config = TrainConfig(batch_size=100, max_epochs=2)
    history = [eval_record(0.5, 2.0, 0.40, 6), eval_record(1.0, 4.0, 0.80, 11)]
    reached = time_to_target(history, 0.6, config, clock)
    assert reached.evaluation is history[1]
    assert reached.measured_seconds == pytest.approx(3.0) and reached.epochs == pytest.approx(0.75)
    assert reached.images == 85  # halfway from 60 to 110 images
    assert reached.clock_seconds == pytest.approx((6.0 + 10.5) / 2)  # halfway from 6 s to 10.5 s of the clock
    # Without a step clock the study keeps measured seconds: both figures are the same.
    measured = time_to_target(history, 0.6, config, None)
    assert measured.clock_seconds == measured.measured_seconds == pytest.approx(3.0)
    assert time_to_target(history, 0.9, config, clock) is None
