"""TPE's drawn startup trials as a Latin hypercube (search/sampling/first_design.py), on the
default space and on small ones, sampled with study.ask() through the scheduled sampler."""

import math

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search.records.keys import WARM_PARAMS
from search.sampling.factory import TPE_STARTUP_TRIALS
from search.sampling.first_design import design_value, from_unit
from search.sampling.scheduled import ScheduledSampler
from search.space import default_params, suggest

BASELINE = {"lr": 0.05, "batch_size": 128, "step_size": 5, "gamma": 0.5, "momentum": 0.9}


def _study(sampler, n, params=None):
    """n trials of `sampler` over `params` (the default space), each drawn after `begin()`."""
    params = params or default_params()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=sampler)
    for _ in range(n):
        trial = study.ask()
        frozen = study._storage.get_trial(trial._trial_id)
        sampler.begin(study, frozen, [t for t in study.get_trials(deepcopy=False) if t.number < trial.number])
        values = [suggest(trial, name, dist) for name, dist in params.items()]
        study.tell(trial, sum(math.log(abs(float(v)) + 1) for v in values))
    return study


def _stratum(distribution, value, n):
    """Which of n equal strata of `distribution`'s range (log where it is log) `value` is in."""
    lo, hi, v = distribution.low, distribution.high, value
    if distribution.log:
        lo, hi, v = math.log(lo), math.log(hi), math.log(v)
    return min(int((v - lo) / (hi - lo) * n), n - 1)


def test_the_drawn_startup_trials_cover_every_batch_size_and_every_stratum_of_each_range():
    # After the baseline, TPE's 7 drawn startup trials: the 7 default batch sizes once each, and
    # each float range's 7 strata (the LR's on the log scale) once each.
    study = _study(ScheduledSampler("tpe", 11, BASELINE), TPE_STARTUP_TRIALS)
    space = default_params()
    design = study.trials[1:]
    assert study.trials[0].params == BASELINE
    assert sorted(t.params["batch_size"] for t in design) == sorted(space["batch_size"].choices)
    for name in ("lr", "gamma", "momentum"):
        assert sorted(_stratum(space[name], t.params[name], 7) for t in design) == list(range(7)), name
    # step_size's 15 values in 7 strata: the j-th smallest lies in the j-th (its index in
    # [15j/7, 15(j+1)/7), bounds floored: a value on a boundary may fall either side).
    for j, index in enumerate(sorted(t.params["step_size"] - 1 for t in design)):
        assert 15 * j // 7 <= index <= (15 * (j + 1) - 1) // 7, (j, index)


def test_the_design_is_the_studys_own_and_the_same_on_any_host():
    a = [t.params for t in _study(ScheduledSampler("tpe", 11, BASELINE), TPE_STARTUP_TRIALS).trials]
    b = [t.params for t in _study(ScheduledSampler("tpe", 11, BASELINE), TPE_STARTUP_TRIALS).trials]
    c = [t.params for t in _study(ScheduledSampler("tpe", 12, BASELINE), TPE_STARTUP_TRIALS).trials]
    assert a == b
    assert a[1:] != c[1:] and a[0] == c[0]
    # The parameters are not paired alike: each has its own permutation of the strata.
    order = {
        name: [_stratum(default_params()[name], p[name], 7) for p in a[1:]] for name in ("lr", "gamma", "momentum")
    }
    assert len({tuple(v) for v in order.values()}) == 3


def test_only_tpes_drawn_startup_trials_are_designed():
    sampler = ScheduledSampler("tpe", 0, BASELINE, warm_start=[{WARM_PARAMS: {"lr": 0.01}}])
    assert [sampler.design_place(s) for s in range(10)] == [
        None,  # the warm start's
        None,  # the baseline
        *[(i, 6) for i in range(6)],
        None,  # TPE's own from here
        None,
    ]
    assert [ScheduledSampler("tpe", 0).design_place(s) for s in (0, 7, 8)] == [(0, 8), (7, 8), None]
    assert all(ScheduledSampler(name, 0, BASELINE).design_place(3) is None for name in ("random", "qmc", "cmaes", "gp"))
    # Past the design TPE draws, and differently per trial.
    study = _study(ScheduledSampler("tpe", 11, BASELINE), TPE_STARTUP_TRIALS + 4)
    assert len({t.params["lr"] for t in study.trials[TPE_STARTUP_TRIALS:]}) == 4


def test_a_narrowed_space_is_designed_within_its_own_ranges():
    params = {
        "lr": FloatDistribution(0.005, 0.02, log=True),
        "batch_size": CategoricalDistribution((32, 64)),
        "step_size": IntDistribution(1, 4),
    }
    study = _study(ScheduledSampler("tpe", 3), TPE_STARTUP_TRIALS, params)
    assert all(0.005 <= t.params["lr"] <= 0.02 and 1 <= t.params["step_size"] <= 4 for t in study.trials)
    # 8 trials, 2 batch sizes: 4 each, and 4 step sizes: 2 each.
    sizes = [t.params["batch_size"] for t in study.trials]
    assert sizes.count(32) == sizes.count(64) == 4
    assert sorted(t.params["step_size"] for t in study.trials) == [1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize(
    ("distribution", "expected"),
    [
        (FloatDistribution(0.0, 10.0), [0.0, 5.0, 10.0]),
        (FloatDistribution(1e-3, 0.1, log=True), [1e-3, 1e-2, 0.1]),
        (FloatDistribution(0.0, 1.0, step=0.25), [0.0, 0.5, 1.0]),
        (IntDistribution(1, 5), [1, 3, 5]),
        (IntDistribution(2, 10, step=4), [2, 6, 10]),
        (IntDistribution(1, 100, log=True), [1, 7, 100]),  # the middle of [0.5, 100.5] on the log scale
        (CategoricalDistribution(("a", "b", "c")), ["a", "b", "c"]),
    ],
)
def test_a_quantile_maps_to_the_value_there_and_never_outside_the_range(distribution, expected):
    values = [from_unit(distribution, u) for u in (0.0, 0.5, 1.0 - 1e-12)]
    assert values[0] == pytest.approx(expected[0]) and values[2] == pytest.approx(expected[2])
    assert values[1] == pytest.approx(expected[1])
    assert all(distribution._contains(distribution.to_internal_repr(v)) for v in values)
    assert design_value(0, "p", distribution, 0, 3) == design_value(0, "p", distribution, 0, 3)
