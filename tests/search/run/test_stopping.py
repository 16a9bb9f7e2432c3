"""The patience stop on hand-made trials, and in a real schedule."""

from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.run.stopping import patience_stop


def _ended(values):
    """Finished trials in the order they ended: a number is a time to target, None a pruned trial."""
    trials = []
    for number, value in enumerate(values):
        state = TrialState.PRUNED if value is None else TrialState.COMPLETE
        t = create_trial(state=state, value=value, params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)})
        t.number = number
        trials.append(t)
    return trials


def test_off_without_patience():
    assert patience_stop(_ended([20.0, None, None, None]), None) is None


def test_stops_after_patience_trials_without_a_real_improvement():
    assert patience_stop(_ended([20.0, None, None]), 3) is None  # 2 since the best
    stop = patience_stop(_ended([20.0, None, None, None]), 3)
    assert stop is not None and (stop.ended, stop.best_number, stop.best_seconds) == (4, 0, 20.0)
    assert stop.reason == (
        "stopped after 4 trials: the last 3 (its patience) did not improve the best time to target, "
        "trial 0's 20.0 s, by 1 %"
    )


def test_a_new_best_by_less_than_one_percent_does_not_reset_the_count_but_is_the_best():
    stop = patience_stop(_ended([20.0, None, 19.9, None]), 3)
    assert stop is not None and stop.best_number == 2 and stop.best_seconds == 19.9
    assert patience_stop(_ended([20.0, None, 19.7, None]), 3) is None  # 1.5 % better: counted anew


def test_never_before_a_trial_reached_the_target():
    assert patience_stop(_ended([None] * 10), 3) is None
    assert patience_stop(_ended([None] * 10 + [30.0]), 3) is None
