"""Where a learning curve first crosses an accuracy: interpolated between evaluations."""

import pytest

from lenet.curve import first_crossing, first_crossing_at
from tests.synthetic import eval_record


def test_the_crossing_is_interpolated_between_the_bracketing_evaluations():
    history = [eval_record(0.5, 2.0, 0.40, 10), eval_record(1.0, 4.0, 0.56, 20), eval_record(1.5, 6.0, 0.64, 30)]
    cross = first_crossing(history, 0.60)
    assert cross.before is history[1] and cross.after is history[2] and cross.fraction == pytest.approx(0.5)
    assert cross.interpolate(lambda r: r.train_seconds) == pytest.approx(5.0)
    assert cross.interpolate(lambda r: r.epoch) == pytest.approx(1.25)
    assert first_crossing(history, 0.70) is None
    # Reached at the first evaluation: interpolated from the start (chance accuracy, 0 s).
    first = first_crossing(history, 0.25)
    assert first.before is None and first.interpolate(lambda r: r.train_seconds) == pytest.approx(2.0 * 0.15 / 0.30)


def test_first_crossing_at_interpolates_from_the_evaluation_before_or_from_chance():
    assert first_crossing_at([0.3, 0.5, 0.7], 0.6) == (2, pytest.approx(0.5))
    assert first_crossing_at([0.3, 0.5], 0.2) == (0, pytest.approx(0.5))  # from chance (0.1) at the start
    assert first_crossing_at([0.3, 0.5], 0.5) == (1, 1.0)
    assert first_crossing_at([0.3, 0.5], 0.6) is None
