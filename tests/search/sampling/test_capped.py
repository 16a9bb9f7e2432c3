"""Near misses the cannot-win rule capped (search/sampling/capped.py): the confirmation race's
candidates, on trials built with create_trial."""

from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.records.keys import BEST_VAL_ACCURACY, CAPPED_AT, TARGET
from search.sampling.capped import capped_value

GOAL = 0.62
X = {"x": FloatDistribution(0.0, 1.0)}


def _trial(*, value=None, best, cap=None):
    return create_trial(
        state=TrialState.COMPLETE if value is not None else TrialState.PRUNED,
        value=value,
        params={"x": 0.5},
        distributions=X,
        user_attrs={TARGET: GOAL, BEST_VAL_ACCURACY: best, CAPPED_AT: cap},
    )


def test_only_near_misses_that_were_capped_count():
    assert capped_value(_trial(value=40.0, best=0.625)) is None  # completed: it has a real time
    assert capped_value(_trial(best=0.615, cap=25.0)) == 25.0
    assert capped_value(_trial(best=0.615)) is None  # pruned by another rule: no cap
    assert capped_value(_trial(best=0.55, cap=25.0)) is None  # capped, but 7 points short
    assert capped_value(_trial(best=0.55, cap=25.0), near=0.08) == 25.0  # within 8 points of 0.62
