"""The baseline sampler: trial 0 gets the baseline's values, every other trial the base sampler's."""

import optuna
import pytest

from search.sampling.baseline import BaselineSampler
from search.sampling.factory import make_sampler


def _suggest(trial):
    return {
        "lr": trial.suggest_float("lr", 1e-3, 0.3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 128, 512]),
        "momentum": trial.suggest_float("momentum", 0.5, 0.98),
    }


@pytest.mark.parametrize("base", ["tpe", "random"])
def test_trial_zero_gets_the_baseline_and_the_rest_are_drawn(base):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (
        optuna.samplers.TPESampler(seed=0, multivariate=True, n_startup_trials=2)
        if base == "tpe"
        else optuna.samplers.RandomSampler(seed=0)
    )
    # momentum is not in the baseline, and lr 0.5 lies outside the range: both are drawn.
    study = optuna.create_study(sampler=BaselineSampler({"lr": 0.5, "batch_size": 128}, sampler))
    study.optimize(lambda t: sum(v for v in _suggest(t).values()), n_trials=6)
    first, rest = study.trials[0], study.trials[1:]
    assert first.params["batch_size"] == 128
    assert first.params["lr"] != 0.5 and 1e-3 <= first.params["lr"] <= 0.3
    assert len({t.params["momentum"] for t in study.trials}) == 6
    assert len({(t.params["lr"], t.params["batch_size"]) for t in rest}) == 5


def test_the_sampler_is_wrapped_only_when_the_study_has_a_baseline():
    assert isinstance(make_sampler("random", 0), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("random", 0, None), optuna.samplers.RandomSampler)
    wrapped = make_sampler("random", 0, {"lr": 0.05})
    assert isinstance(wrapped, BaselineSampler) and wrapped.params == {"lr": 0.05}
    assert isinstance(wrapped.base, optuna.samplers.RandomSampler)
