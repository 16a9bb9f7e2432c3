"""TPE's view of near misses the cannot-win rule stopped (search/capped.py), on studies built
with study.add_trial and sampled with study.ask(), no training."""

import statistics

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.records.trial import BEST_VAL_ACCURACY, CAPPED_AT, TARGET
from search.sampling.capped import CappedAsCompleted, CappedView, capped_value
from search.sampling.factory import make_sampler
from search.study.view import PRIVATE_STUDY_API

GOAL = 0.62
X = {"x": FloatDistribution(0.0, 1.0)}


def _add(study, x, *, value=None, best, cap=None, epochs=1):
    attrs = {TARGET: GOAL, BEST_VAL_ACCURACY: best, CAPPED_AT: cap}
    study.add_trial(
        create_trial(
            state=TrialState.COMPLETE if value is not None else TrialState.PRUNED,
            value=value,
            params={"x": x},
            distributions=X,
            user_attrs=attrs,
            intermediate_values={e: 1 - best for e in range(1, epochs + 1)},
        )
    )


def _history(sampler=None) -> optuna.Study:
    """30 trials, as a pruned 30-trial study has them: three slow completed trials around
    x = 0.1, three near misses capped at 25 s around x = 0.9, a far miss capped at x = 0.5,
    and 23 underfit trials in between that ran longer (more epochs)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    for i in range(3):
        _add(study, 0.08 + 0.02 * i, value=40.0 + i, best=0.625, epochs=12)
    for i in range(3):
        _add(study, 0.88 + 0.02 * i, best=0.615, cap=25.0, epochs=8)
    _add(study, 0.5, best=0.55, cap=25.0, epochs=8)
    for i in range(23):
        _add(study, 0.25 + 0.02 * i, best=0.30, epochs=10)
    return study


def test_only_near_misses_that_were_capped_count():
    trials = _history().trials
    assert [capped_value(t) for t in trials[:8]] == [None] * 3 + [25.0] * 3 + [None] * 2
    assert capped_value(trials[6], near=0.08) == 25.0  # 0.55 is within 8 points of 0.62


def test_the_view_completes_near_misses_and_the_storage_keeps_them_pruned():
    study = _history()
    view = CappedView(study)
    done = view.get_trials(states=(TrialState.COMPLETE,))
    assert [(t.number, t.value) for t in done] == [(0, 40.0), (1, 41.0), (2, 42.0), (3, 25.0), (4, 25.0), (5, 25.0)]
    pruned = [t.number for t in view._get_trials(states=(TrialState.PRUNED,), use_cache=True)]
    assert pruned == list(range(6, 30))
    assert len(view.trials) == 30 and view.direction == study.direction
    # Nothing stored changed: the near misses are still pruned, and never the best.
    assert study.trials[3].state == TrialState.PRUNED and study.trials[3].value is None
    assert study.best_trial.number == 0


def _proposals(sampler, n=20) -> list[float]:
    study = _history(sampler)
    return [study.ask().suggest_float("x", 0.0, 1.0) for _ in range(n)]


def test_tpe_samples_next_to_the_near_miss_not_the_slow_completed_trial():
    # The sampler optimize uses; its base is plain TPE, which ranks every pruned trial after
    # the completed ones: with 30 trials its "good" group is 3 trials, those around x = 0.1.
    wrapped = make_sampler("tpe", 0)
    plain = _proposals(wrapped.base)
    capped = _proposals(make_sampler("tpe", 0))
    assert statistics.median(plain) < 0.3
    assert statistics.median(capped) > 0.7


def test_tpe_is_wrapped_and_its_proposals_follow_the_view():
    sampler = make_sampler("tpe", 0)
    assert isinstance(sampler, CappedAsCompleted) and isinstance(sampler.base, optuna.samplers.TPESampler)
    # The same study seen without the view gives other proposals: the wrapper is what moves them.
    assert _proposals(make_sampler("tpe", 0)) != _proposals(make_sampler("tpe", 0).base)


@pytest.mark.parametrize("name", ["random", "cmaes", "gp", "qmc"])
def test_other_samplers_are_not_wrapped(name):
    assert not isinstance(make_sampler(name, 0), CappedAsCompleted)


def test_the_private_optuna_api_the_view_leans_on_is_still_there():
    # If this fails, Optuna moved a private member that TPE reads through the view
    # (search/capped.py): check the new release's TPE before widening pyproject's bound.
    import inspect

    study = optuna.create_study()
    for name in PRIVATE_STUDY_API:
        assert hasattr(study, name), f"optuna {optuna.__version__}: Study.{name} is gone"
    params = list(inspect.signature(optuna.Study._get_trials).parameters)
    assert params == ["self", "deepcopy", "states", "use_cache"], f"optuna {optuna.__version__}: {params}"


def test_the_view_offers_only_what_a_sampler_reads():
    view = CappedView(_history())
    assert view.study_name and view.directions
    with pytest.raises(AttributeError, match="offers no 'optimize'"):
        view.optimize  # noqa: B018
    with pytest.raises(AttributeError):
        view.tell  # noqa: B018


def test_the_view_ranks_pruned_trials_without_the_no_value_marker():
    from search.sampling.capped import without_marker

    study = optuna.create_study()
    study.add_trial(
        create_trial(
            state=TrialState.PRUNED,
            params={"x": 0.5},
            distributions=X,
            intermediate_values={1: 0.6, 2: 0.5, 3: float("nan")},
        )
    )
    (trial,) = study.trials
    assert trial.value is None and trial.last_step == 3
    seen = without_marker(trial)
    assert seen.intermediate_values == {1: 0.6, 2: 0.5} and seen.last_step == 2
    assert trial.intermediate_values[3] != trial.intermediate_values[3]  # the stored trial keeps its NaN
    (viewed,) = CappedView(study).get_trials(states=(TrialState.PRUNED,))
    assert viewed.intermediate_values == {1: 0.6, 2: 0.5}
