"""The schedule on hand-made trials: which lane starts the next trial and when, which events are
safe to take, and what an event sees."""

import math

from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from search.records.keys import HORIZON, LANE, LANE_END, LANE_START
from search.run.schedule import NEVER, Event, Schedule


def _trial(number, state, lane=None, start=None, horizon=None, end=None, value=None):
    attrs = {}
    if lane is not None:
        attrs = {LANE: lane, LANE_START: start, HORIZON: horizon if horizon is not None else end}
        if end is not None:
            attrs[LANE_END] = end
    t = create_trial(
        state=state,
        value=value if state == TrialState.COMPLETE else None,
        params={"x": 0.5},
        distributions={"x": FloatDistribution(0, 1)},
        user_attrs=attrs,
    )
    t.number = number
    return t


RUN, DONE, PRUNED = TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED


def test_the_first_trials_take_the_lanes_in_order_at_time_zero():
    s = Schedule([], lanes=2, n_finished=4)
    assert s.horizons == [Event(0.0, 0), Event(0.0, 1)] and s.next_start() == Event(0.0, 0)
    s = Schedule([_trial(0, RUN, 0, 0.0, 5.0)], lanes=2, n_finished=4)
    assert s.next_start() == Event(0.0, 1)  # lane 0's next event, at 5 s, comes after
    assert not s.safe(Event(5.0, 0))  # lane 1 has still to start at 0
    assert s.behind(Event(5.0, 0)) == [1]


def test_the_lane_that_frees_first_takes_the_next_trial_once_no_other_can_free_earlier():
    running0 = _trial(0, RUN, 0, 0.0, 5.0)
    ended1 = _trial(1, DONE, 1, 0.0, end=4.0, value=4.0)
    s = Schedule([running0, ended1], lanes=2, n_finished=4)
    assert s.next_start() == Event(4.0, 1)  # lane 0 cannot end before 5 s
    early = _trial(0, RUN, 0, 0.0, 3.5)  # lane 0's next evaluation, at 3.5 s, could still end it
    s = Schedule([early, ended1], lanes=2, n_finished=4)
    assert s.next_start() is None and s.safe(Event(3.5, 0)) and not s.safe(Event(4.0, 1))


def test_equal_times_go_in_lane_order():
    s = Schedule([_trial(0, RUN, 0, 0.0, 4.0), _trial(1, DONE, 1, 0.0, end=4.0, value=4.0)], lanes=2, n_finished=4)
    assert Event(4.0, 0) < Event(4.0, 1)
    assert s.safe(Event(4.0, 0)) and s.next_start() is None  # lane 0's evaluation at 4 s comes first
    # What each sees: lane 1's trial ended at (4 s, lane 1), after lane 0's event at 4 s.
    assert [(t.number, ended) for t, ended in s.seen_at(Event(4.0, 0))] == [(0, False), (1, False)]
    assert [(t.number, ended) for t, ended in s.seen_at(Event(4.0, 1))] == [(0, False), (1, True)]


def test_an_event_sees_what_ended_by_it_and_nothing_that_started_after():
    trials = [
        _trial(0, DONE, 0, 0.0, end=3.0, value=3.0),
        _trial(1, PRUNED, 1, 0.0, end=6.0),
        _trial(2, RUN, 0, 3.0, 7.0),
        _trial(3, RUN, 1, 6.0, 9.0),
    ]
    s = Schedule(trials, lanes=2, n_finished=10)
    assert [(t.number, e) for t, e in s.seen_at(Event(5.0, 0))] == [(0, True), (1, False), (2, False)]
    assert [(t.number, e) for t, e in s.seen_at(Event(7.0, 0))] == [(0, True), (1, True), (2, False), (3, False)]
    failed = _trial(4, TrialState.FAIL, 0, 1.0, end=1.0)  # out of memory: the machine's, not the schedule's
    assert 4 not in [t.number for t, _ in Schedule([*trials, failed], 2, 10).seen_at(Event(8.0, 1))]


def test_the_study_is_complete_with_its_finished_trials_and_none_running():
    done = [_trial(0, DONE, 0, 0.0, end=3.0, value=3.0), _trial(1, PRUNED, 1, 0.0, end=2.0)]
    assert Schedule(done, lanes=2, n_finished=2).complete
    s = Schedule([*done, _trial(2, RUN, 1, 2.0, 4.0)], lanes=2, n_finished=2)
    assert not s.complete and not s.wants_more and s.next_start() is None
    assert s.horizons[0] == NEVER  # nothing more to start there


def test_a_study_from_before_lanes_reads_as_ended_at_time_zero():
    old = _trial(0, DONE, value=3.0)  # no lane attributes
    s = Schedule([old], lanes=1, n_finished=3)
    assert s.next_start() == Event(0.0, 0) and s.finished == 1
    assert s.seen_at(Event(0.0, 0)) == [(old, True)]
    assert not math.isinf(s.horizons[0].time)


def test_patience_stops_a_one_lane_schedule_before_its_next_trial():
    done = [_trial(0, DONE, 0, 0.0, end=5.0, value=5.0)]
    done += [_trial(i, PRUNED, 0, 5.0 * i, end=5.0 * (i + 1)) for i in range(1, 4)]
    s = Schedule(done, lanes=1, n_finished=10, patience=3)
    assert s.stop is not None and s.stop.ended == 4 and s.complete and not s.wants_more
    assert s.next_start() is None and s.horizons == [NEVER]
    assert Schedule(done, lanes=1, n_finished=10, patience=4).stop is None
    assert Schedule(done, lanes=1, n_finished=10).next_start() == Event(20.0, 0)  # no patience: goes on


def test_patience_waits_for_what_can_still_end_before_the_next_start_and_then_holds():
    ended = [_trial(0, DONE, 0, 0.0, end=5.0, value=5.0), _trial(1, PRUNED, 1, 0.0, end=6.0)]
    ended += [_trial(2, PRUNED, 0, 5.0, end=9.0)]
    # Lane 0 is free at 9; trial 3 on lane 1 could still end before that (its horizon is 8).
    s = Schedule([*ended, _trial(3, RUN, 1, 6.0, 8.0)], lanes=2, n_finished=10, patience=2)
    assert s.stop is None and s.next_start() is None
    # Once its next event lies after 9, the next start is known and what ended by then decides.
    s = Schedule([*ended, _trial(3, RUN, 1, 6.0, 9.5)], lanes=2, n_finished=10, patience=2)
    assert s.stop is not None and s.stop.ended == 3 and not s.complete  # trial 3 still runs
    # Trial 3 ends after 9, faster than the best: the stop, decided at 9, holds.
    s = Schedule([*ended, _trial(3, DONE, 1, 6.0, end=10.0, value=1.0)], lanes=2, n_finished=10, patience=2)
    assert s.stop is not None and s.stop.best_number == 0 and s.complete
