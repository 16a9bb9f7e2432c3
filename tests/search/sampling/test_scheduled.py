"""Sampling per trial of the schedule: trial 0 trains the baseline, every other trial draws from
what its start sees, seeded by the study's seed and its number, whichever sampler instance asks."""

import optuna
import pytest
from optuna.trial import TrialState

from search.sampling.scheduled import ScheduledSampler, slot_seed
from search.study.view import as_running


def _suggest(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-3, 0.3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 128, 512]),
        "momentum": trial.suggest_float("momentum", 0.5, 0.98),
    }


def _value(params):
    return params["lr"] * 100 + params["momentum"] + params["batch_size"] / 512


def _run(sampler, n, seen=lambda trials: trials):
    """n trials, each drawing after `begin()` with what `seen` shows of the study's trials."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        frozen = study._storage.get_trial(trial._trial_id)
        sampler.begin(study, frozen, seen([t for t in study.get_trials(deepcopy=False) if t.number < trial.number]))
        study.tell(trial, _value(_suggest(trial)))
    return study


@pytest.mark.parametrize("name", ["tpe", "random"])
def test_trial_zero_gets_the_baseline_and_the_rest_are_drawn(name):
    # momentum is not in the baseline, and lr 0.5 lies outside the range: both are drawn.
    study = _run(ScheduledSampler(name, 0, {"lr": 0.5, "batch_size": 128}), 12)
    first, rest = study.trials[0], study.trials[1:]
    assert first.params["batch_size"] == 128
    assert first.params["lr"] != 0.5 and 1e-3 <= first.params["lr"] <= 0.3
    assert len({t.params["momentum"] for t in study.trials}) == 12
    assert len({(t.params["lr"], t.params["batch_size"]) for t in rest}) == 11


@pytest.mark.parametrize("name", ["tpe", "random", "cmaes", "gp", "qmc"])
def test_a_trial_draws_the_same_whichever_sampler_instance_asks(name):
    # Two executors' samplers, one study's schedule: each trial is drawn by a fresh instance as
    # the trial's number and what it sees say, so the studies are the same.
    a = [t.params for t in _run(ScheduledSampler(name, 7), 10).trials]
    b = [t.params for t in _run(ScheduledSampler(name, 7), 10).trials]
    assert a == b
    other_seed = [t.params for t in _run(ScheduledSampler(name, 8), 10).trials]
    assert other_seed != a
    assert slot_seed(7, 3) == slot_seed(7, 3) != slot_seed(7, 4) != slot_seed(8, 4)


def test_a_trial_sees_only_what_its_start_sees():
    # Past the startup trials TPE models what it sees: hiding the last trials (ended after this
    # one's start in the clock) changes what it draws; showing them as running (constant liar)
    # is again another view.
    full = [t.params for t in _run(ScheduledSampler("tpe", 0), 14).trials]
    hidden = [t.params for t in _run(ScheduledSampler("tpe", 0), 14, seen=lambda trials: trials[:-2]).trials]
    running = [
        t.params
        for t in _run(
            ScheduledSampler("tpe", 0), 14, seen=lambda trials: trials[:-2] + [as_running(t) for t in trials[-2:]]
        ).trials
    ]
    assert full[:8] == hidden[:8] == running[:8]  # TPE's 8 startup draws: independent of what they see
    assert full[8:] != hidden[8:] and hidden[8:] != running[8:]
    assert all(
        t.state == TrialState.RUNNING and t.value is None
        for t in map(as_running, _run(ScheduledSampler("random", 0), 2).trials)
    )
