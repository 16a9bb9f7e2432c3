"""The study's schedule: its trials laid out on lanes in the study's clock, as a discrete-event
simulation that any number of processes can execute and still draw the same study.

A study has L lanes. Trial 0 starts on lane 0 at time 0, trial 1 on lane 1, and so on; every
later trial starts on the lane that becomes free first (ties by lane number), at that lane's
time. A trial occupies its lane for its training priced by the clock and its evaluations
(`search.clock.pricing.lane_seconds`). Every event of the schedule, a trial's start or one of
its evaluations, has a place in one total order, (lane time, lane); what a trial's sampler and
pruner see at an event is what had ended at or before it in that order, whatever has finished
on the machine meanwhile. So an executor may take an event once no other lane can still have
an earlier one: every other lane's *horizon*, the place of its next event not yet taken, lies
after it (`Schedule.safe`). The lane with the earliest horizon can always go on, so executors
never deadlock; they wait only for a lane that is behind in the clock (docs/scaling.md, "Lanes").

Trial numbers are the schedule's order: an executor asks Optuna for a trial (numbers are
unique), and the lowest-numbered trial not yet placed takes the next start once it is safe. A
trial whose executor died (its heartbeat went stale) or was interrupted keeps its number and
place: another executor takes it over and trains it again from its start, so the schedule is
the one an uninterrupted run draws (search/run/executor.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial, TrialState

from search.records.trial import Placement, placement_of
from search.run.stopping import Stop, patience_stop
from search.study.queries import FINISHED


@dataclass(frozen=True, order=True)
class Event:
    """A place in the schedule's order: lane time, then lane."""

    time: float
    lane: int


NEVER = Event(math.inf, 0)  # the horizon of a lane that has nothing more to do


class Schedule:
    """The schedule as the stored trials describe it, for a study of `lanes` lanes that needs
    `n_finished` finished trials, or fewer where `patience` stops it (search/run/stopping.py)."""

    def __init__(self, trials: Sequence[FrozenTrial], lanes: int, n_finished: int, patience: int | None = None) -> None:
        self.n_lanes, self.n_finished = lanes, n_finished
        self.placed: dict[int, tuple[FrozenTrial, Placement]] = {}  # number -> trial and placement
        self.unplaced: list[FrozenTrial] = []  # asked for, waiting for their start (number order)
        for t in sorted(trials, key=lambda t: t.number):
            placement = placement_of(t)
            if placement is not None:
                self.placed[t.number] = (t, placement)
            elif t.state == TrialState.RUNNING:
                self.unplaced.append(t)
        self.finished = sum(1 for t, _ in self.placed.values() if t.state in FINISHED)
        self.running = [t for t, _ in self.placed.values() if t.state == TrialState.RUNNING]
        self.stop = self._stop(patience)
        self.horizons = [self._horizon(lane) for lane in range(lanes)]

    @property
    def wants_more(self) -> bool:
        """Whether another trial must start: the finished and running ones fall short, and the
        search has not stopped itself."""
        return self.stop is None and self.finished + len(self.running) < self.n_finished

    @property
    def complete(self) -> bool:
        """The study has its finished trials (or stopped itself), and none is running."""
        return (self.finished >= self.n_finished or self.stop is not None) and not self.running

    def _stop(self, patience: int | None) -> Stop | None:
        """Whether the search stops before its next trial, judged on what had ended by that
        trial's start event. Decided once no running trial can end before that event; the event
        then never moves (no later trial starts, and no earlier one can end before it), so a
        stop, once decided, holds whatever ends afterwards."""
        if patience is None or self.finished + len(self.running) >= self.n_finished:
            return None
        free = [self._free_at(lane) for lane in range(self.n_lanes) if not self._busy(lane)]
        if not free:
            return None
        start = min(free)
        if any(Event(p.horizon, p.lane) <= start for t, p in self.placed.values() if t.state == TrialState.RUNNING):
            return None
        ended = sorted(
            (Event(p.end, p.lane), t.number, t)
            for t, p in self.placed.values()
            if t.state in FINISHED and p.end is not None and Event(p.end, p.lane) <= start
        )
        return patience_stop([t for _, _, t in ended], patience)

    def _free_at(self, lane: int) -> Event:
        """When a lane with no running trial became free."""
        on_lane = [(t, p) for t, p in self.placed.values() if p.lane == lane]
        if not on_lane:
            return Event(0.0, lane)
        _, placement = max(on_lane, key=lambda tp: tp[0].number)
        return Event(placement.end if placement.end is not None else placement.start, lane)

    def _horizon(self, lane: int) -> Event:
        on_lane = [(t, p) for t, p in self.placed.values() if p.lane == lane]
        if on_lane:
            trial, placement = max(on_lane, key=lambda tp: tp[0].number)
            if trial.state == TrialState.RUNNING:
                return Event(placement.horizon, lane)
        return self._free_at(lane) if self.wants_more else NEVER

    def next_start(self) -> Event | None:
        """Where and when the next trial starts: the lane that frees first, once that is the
        schedule's next event (None: no lane frees before every other lane's next event is known,
        or no trial is to start)."""
        if not self.wants_more:
            return None
        free = [e for i, e in enumerate(self.horizons) if e != NEVER and not self._busy(i)]
        if not free:
            return None
        first = min(free)
        return first if self.safe(first) else None

    def _busy(self, lane: int) -> bool:
        return any(p.lane == lane for t, p in self.placed.values() if t.state == TrialState.RUNNING)

    def safe(self, event: Event) -> bool:
        """Whether every other lane's next event comes after `event`: whatever ends at or before
        it has been written."""
        return all(h > event for i, h in enumerate(self.horizons) if i != event.lane)

    def behind(self, event: Event) -> list[int]:
        """The lanes whose next event comes before `event` (what an executor waits for)."""
        return [i for i, h in enumerate(self.horizons) if i != event.lane and h <= event]

    def seen_at(self, event: Event) -> list[tuple[FrozenTrial, bool]]:
        """The trials as an event sees them: those that ended at or before it (True) and those
        that had started but not ended (False: running then); none that started after it, and
        no failed one (its failure is the machine's, not the schedule's)."""
        seen = []
        for trial, p in self.placed.values():
            if trial.state == TrialState.FAIL or Event(p.start, p.lane) > event:
                continue
            ended = trial.state in FINISHED and p.end is not None and Event(p.end, p.lane) <= event
            seen.append((trial, ended))
        return seen
