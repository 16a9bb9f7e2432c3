"""A study's schedules priced in another clock: exact for trials that reached the target (the same
as training them again there), bounds marked as bounds, refusals for clocks that cannot price
them; a warm start's first trials are the repriced winners; `clock` writes a clock; `compare`."""

from __future__ import annotations

import dataclasses
import json
import math

import optuna
import pytest
from optuna.trial import TrialState

from lenet.clock import StepClock, StepCost
from lenet.data import load_dataset
from lenet.train import train
from search.clock.pricing import time_to_target
from search.clock.reprice import Priced, Trained, price
from search.records.study import study_record
from search.records.trial import TrialRecord
from tests.search.cli_helpers import assert_one_line_error, run_cli


def _other_clock(tiny) -> StepClock:
    """The study's clock with every step three times dearer at batch 32 and half at 64: another machine."""
    clock = StepClock.from_dict(json.loads(tiny.clock.read_text()))
    scale = {"32": 3.0, "64": 0.5}
    costs = {
        k: dataclasses.replace(c, full=c.full * scale[k], partial=c.partial * scale[k] if c.partial else None)
        for k, c in clock.costs.items()
    }
    return dataclasses.replace(clock, costs=costs, threads=1, evaluation=0.01)


def _records(storage):
    return [TrialRecord.of(t) for t in optuna.load_study(study_name="lenet5-cifar10", storage=storage).trials]


def test_repricing_a_reached_trial_is_training_it_again_there(finished_study, tiny):
    other = _other_clock(tiny)
    reached = next(r for r in _records(finished_study) if r.state == TrialState.COMPLETE)
    priced = price(Trained.of(reached), other)
    assert priced.exact and priced.reached and priced.own_seconds == reached.value
    # The same schedule trained again (same seed, same threads): the same steps, priced there.
    data = load_dataset(tiny.archive, "cpu", val_size=200)
    again = train(reached.config, data, threads=reached.threads)
    assert priced.seconds == pytest.approx(
        time_to_target(again.history, reached.target, reached.config, other).clock_seconds
    )
    assert priced.seconds != pytest.approx(reached.value)  # another clock: another price


def test_a_pruned_trial_is_a_lower_bound_and_a_spent_budget_never(finished_study, tiny):
    other = _other_clock(tiny)
    for record in _records(finished_study):
        trained = Trained.of(record)
        if trained is None or record.state == TrialState.COMPLETE:
            continue
        p = price(trained, other)
        if record.outcome in ("budget", "diverged"):
            assert p.exact and math.isinf(p.seconds)
        else:
            assert not p.exact and math.isfinite(p.seconds) and p.seconds > 0


def test_studies_reprice_lists_exact_times_then_bounds(finished_study, tiny, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps(_other_clock(tiny).to_dict()))
    result = run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", other)
    assert result.code == 0, result.err
    assert "priced in the clock of" in result.out and "to try there first: trial" in result.out
    as_json = json.loads(
        run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", other, "--json").out
    )
    schedules = as_json["schedules"]
    exact = [s["seconds_there"] for s in schedules if s["exact"] and s["seconds_there"] is not None]
    assert exact == sorted(exact) and schedules[0]["exact"] and "curve" in schedules[0]["trained"]


def test_clocks_that_cannot_price_the_study_are_refused(finished_study, tiny, tmp_path):
    clock = _other_clock(tiny)
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps(dataclasses.replace(clock, train_size=5000).to_dict()))
    result = run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", smaller)
    assert_one_line_error(result, "measured for 5000 training images", "(--clock)")
    narrow = tmp_path / "narrow.json"
    narrow.write_text(json.dumps(dataclasses.replace(clock, costs={"32": clock.costs["32"]}).to_dict()))
    result = run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", narrow)
    assert_one_line_error(result, "no cost for 64")


def test_a_warm_start_trains_the_repriced_winners_first(finished_study, tiny, tmp_path):
    other = _other_clock(tiny)
    expected = [
        p
        for p in sorted(
            (price(t, other) for t in map(Trained.of, _records(finished_study)) if t), key=lambda p: p.sort_key()
        )
        if p.reached
    ][:3]
    clock = tmp_path / "other.json"
    clock.write_text(json.dumps(other.to_dict()))
    storage = f"sqlite:///{tmp_path}/warm.db"
    listing = tmp_path / "reprice.json"
    listing.write_text(
        run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", clock, "--json").out
    )
    args = tiny.optimize_args(storage, "--trials", "5", "--warm-start", listing, "--confirm", "0", "--study", "warm")
    args[args.index("--clock-from") + 1] = str(clock)
    result = run_cli(*args)
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="warm", storage=storage)
    assert 1 <= len(expected) <= 3  # the best three that reach the target there (or fewer, if fewer do)
    firsts = [TrialRecord.of(t) for t in study.trials[: len(expected)]]
    assert [r.params for r in firsts] == [p.params for p in expected]
    assert all(r.warm_start and f"trial {p.number} of lenet5-cifar10" in r.warm_start for r, p in zip(firsts, expected))
    assert TrialRecord.of(study.trials[len(expected)]).baseline  # then the baseline
    assert len(study_record(study).warm_start) == len(expected)


def test_a_warm_start_takes_only_what_its_space_trains_priced_to_its_own_target(finished_study, tiny, tmp_path):
    clock = StepClock.from_dict(json.loads(tiny.clock.read_text()))
    space = tmp_path / "space64.toml"
    space.write_text(tiny.space.read_text().replace("[batch_size]\nchoices = [32, 64]\n", "batch_size = 64\n"))
    assert "batch_size = 64" in space.read_text()
    priced = sorted(
        (price(t, clock, 0.59) for t in map(Trained.of, _records(finished_study)) if t), key=Priced.sort_key
    )
    expected = [p for p in priced if p.reached and p.config.batch_size == 64][:3]
    storage = f"sqlite:///{tmp_path}/warm64.db"
    args = tiny.optimize_args(storage, "--trials", "4", "--confirm", "0", "--study", "warm64", "--space", space)
    args[args.index("--target") + 1] = "0.59"
    args += ["--warm-start", "study:lenet5-cifar10"]
    # the other study lives in another storage: a study: source is read from this one
    result = run_cli(*args)
    assert_one_line_error(result, "lenet5-cifar10", "(--warm-start)")
    args[args.index("--storage") + 1] = finished_study
    result = run_cli(*args)
    if not expected:  # none of its batch-64 trials reached 0.59: refused, naming the warm start
        assert_one_line_error(result, "no schedule to start from", "(--warm-start)")
        return
    assert result.code == 0, result.err
    study = optuna.load_study(study_name="warm64", storage=finished_study)
    firsts = [TrialRecord.of(t) for t in study.trials[: len(expected)]]
    assert [r.config.batch_size for r in firsts] == [64] * len(expected)
    assert [r.params["lr"] for r in firsts] == [p.params["lr"] for p in expected]
    assert all(f"{p.seconds:.1f} s in this study's clock" in r.warm_start for r, p in zip(firsts, expected))
    optuna.delete_study(study_name="warm64", storage=finished_study)


def test_the_clock_command_writes_a_clock_that_prices_a_study(tiny, tmp_path, finished_study):
    out = tmp_path / "clock.json"
    result = run_cli(
        "clock", "--data", tiny.archive, "--val-size", "200", "--threads", "1", "--batch-sizes", "32,64", "--out", out
    )
    assert result.code == 0, result.err
    clock = StepClock.from_dict(json.loads(out.read_text()))
    assert clock.threads == 1 and set(clock.costs) == {"32", "64"} and clock.hardware["type"] == "cpu"
    assert clock.evaluation > 0 and clock.train_size == 800
    assert run_cli("studies", "reprice", "lenet5-cifar10", "--storage", finished_study, "--clock", out).code == 0


def test_compare_prices_each_winner_on_every_machine(finished_study, tiny, tmp_path):
    other_storage = f"sqlite:///{tmp_path}/other.db"
    clock = tmp_path / "other.json"
    clock.write_text(json.dumps(_other_clock(tiny).to_dict()))
    args = tiny.optimize_args(other_storage, "--trials", "6", "--confirm", "0")
    args[args.index("--clock-from") + 1] = str(clock)
    assert run_cli(*args).code == 0
    figure = tmp_path / "cmp.png"
    result = run_cli("compare", f"{finished_study}:lenet5-cifar10", f"{other_storage}:lenet5-cifar10", "-o", figure)
    assert result.code == 0, result.err
    assert "winner of" in result.out and "fastest on machine 2" in result.out and figure.stat().st_size > 1000
    assert_one_line_error(run_cli("compare", "nonsense"), "is not STORAGE:NAME")
    # a URL without :NAME is refused without its password
    result = run_cli("compare", "postgresql://lenet:hunter2@127.0.0.1:1/db")
    assert_one_line_error(result, "is not STORAGE:NAME", "lenet:***@")
    assert "hunter2" not in result.err


def test_a_clock_step_cost_is_what_lanes_and_repricing_rest_on():
    c = StepClock("cpu", 1, 1050, {"100": StepCost(1.0, 0.5, 50, 0.0)}, rounds=3, evaluation=0.2, processes=2)
    assert StepClock.from_dict(c.to_dict()) == c and c.to_dict()["processes"] == 2
    plain = StepClock("cpu", 1, 1050, {"100": StepCost(1.0, 0.5, 50, 0.0)}, rounds=3)
    assert (
        "evaluation" not in plain.to_dict() and "processes" not in plain.to_dict()
    )  # older clocks read back unchanged
