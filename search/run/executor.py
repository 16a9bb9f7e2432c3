"""Executing the study's schedule in one process: holding up to `capacity` trials at once,
training each to its next evaluation, and taking each event once the schedule says it is safe.

Any number of executors (this process, `--jobs` processes, workers on other hosts) can execute
one schedule: they share it through the storage, where each trial's lane, start and horizon are
written as it goes (search/run/schedule.py). An executor waits only when the event it would
take next is ahead of a lane that is still behind in the clock; it trains meanwhile when it can.
A trial whose executor stopped (interrupted: marked abandoned; killed: its heartbeat went stale)
is taken over by the next executor that looks, and trained again from its start.
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

from lenet.data import load_dataset
from lenet.device import policy_for, set_threads
from lenet.members import PopulationPool
from search.records.study import StudyRecord
from search.records.trial import (
    abandoned,
    placement_of,
    taken_over,
    write_failure,
    write_horizon,
    write_taken_over,
)
from search.run.lane_trial import LaneTrial, TrialContext, TrialFailed
from search.run.schedule import Schedule
from search.run.spec import Placement, WorkerSpec
from search.study.claims import claim, latest, trial_subject
from search.study.outage import STORAGE_FAILURES
from search.study.storage import GRACE_SECONDS, HEARTBEAT_SECONDS, stale_trial_ids

TrialCallback = Callable[[FrozenTrial], None]
# Between reads of the storage while waiting for another lane: from the first, doubling to the
# last, so that a short wait costs little time and a long one little reading.
POLL_SECONDS = (0.01, 0.2)


def poll_seconds(idle: int) -> float:
    """How long an executor sleeps after `idle` polls that found nothing to do: doubling from
    the first to the last of POLL_SECONDS (the exponent bounded: 2**1024 overflows a float)."""
    return min(POLL_SECONDS[1], POLL_SECONDS[0] * 2 ** min(idle, 32))


class Executor:
    """One process's share of the schedule's work."""

    def __init__(
        self,
        spec: WorkerSpec,
        placement: Placement,
        study: optuna.Study,
        record: StudyRecord,
        capacity: int,
        on_trial: TrialCallback | None = None,
    ) -> None:
        threads = set_threads(placement.threads) if placement.threads is not None else None
        data = load_dataset(spec.request.data, placement.device, val_size=spec.request.val_size)
        policy = policy_for(data.device)
        self.ctx = TrialContext(
            study=study,
            space=spec.space,
            target=spec.target,
            data=data,
            seed=spec.request.seed,
            threads=threads,
            policy=policy,
            clock=record.step_clock(),
            baseline=record.baseline is not None,
            trial_note=spec.trial_note,
            # The trials of one batch size this executor holds train as one model (lenet/members.py).
            populations=PopulationPool(data, record.population, policy=policy) if record.population > 1 else None,
        )
        self.study, self.spec, self.lanes, self.capacity = study, spec, record.lanes, capacity
        self.on_trial = on_trial
        self.held: dict[int, LaneTrial] = {}  # number -> trial this executor holds
        self.waited = 0.0  # wall seconds spent waiting for other lanes
        self.deadline = None if spec.request.timeout is None else time.monotonic() + spec.request.timeout
        self._idle = 0  # polls since the last move
        self._stale: set[int] = set()
        self._stale_checked = -float("inf")
        self._beats = _Heartbeats(study, lambda: [t.trial._trial_id for t in self.held.values() if not t.done])

    def run(self) -> None:
        """Execute until the study has its finished trials."""
        self._beats.start()
        try:
            while self._step():
                pass
        except KeyboardInterrupt as exc:
            for t in self.held.values():
                if not t.done:
                    t.abandon(f"interrupted by {exc or 'SIGINT'}")
            raise
        finally:
            self._beats.stop()

    def _step(self) -> bool:
        """One move of the executor; False once the study is complete."""
        trials = self.study.get_trials(deepcopy=False)
        schedule = Schedule(trials, self.lanes, self.spec.request.n_trials, self.spec.request.patience)
        self._forget_ended(trials)
        if self._mend(trials):
            self._idle = 0
            return True
        if schedule.complete:
            self._step_back_surplus(schedule)
            return False
        for move in (self._place, self._decide, self._ask, self._compute, self._take_over):
            if move(trials, schedule):
                self._idle = 0
                return True
        started = time.monotonic()
        time.sleep(poll_seconds(self._idle))
        self._idle += 1
        self.waited += time.monotonic() - started
        return True

    # -- moves, in the order they are tried ----------------------------------------------------

    def _take_over(self, trials: list[FrozenTrial], schedule: Schedule) -> bool:
        """Take over a trial whose executor stopped: interrupted, or its heartbeat went stale. (Tried
        when nothing else can be done, whatever this executor holds: every lane waits for it.)

        Claimed (search/study/claims.py) at the generation after the latest claimed, with the
        evidence read after that generation: an abandonment written by the latest claim's owner,
        or a heartbeat stale now. A claimer beats before it claims, so of executors that look at
        once one claims it, and one that reads the generation after another's claim finds the
        trial beating. Skipped while this executor's own beats fail (the storage away: every
        trial looks stale then)."""
        orphans = [t for t in trials if t.state == TrialState.RUNNING and t.number not in self.held]
        if not orphans or self._beats.failing():
            return False
        now = time.monotonic()
        if now - self._stale_checked > HEARTBEAT_SECONDS:
            self._stale, self._stale_checked = set(stale_trial_ids(self.study)), now
        for t in orphans:
            if not (abandoned(t) or t._trial_id in self._stale):
                continue
            subject = trial_subject(t)
            generation = (latest(self.study._storage, subject) or (0, ""))[0]
            by_its_owner = abandoned(t) and taken_over(t) == generation
            if not by_its_owner and t._trial_id not in stale_trial_ids(self.study):  # read after the generation
                self._stale.discard(t._trial_id)
                continue
            self.study._storage.record_heartbeat(t._trial_id)
            if not claim(self.study._storage, subject, generation + 1):
                continue  # another executor took it over first
            trial = optuna.Trial(self.study, t._trial_id)
            write_taken_over(trial, generation + 1)
            held = LaneTrial(self.ctx, trial, generation + 1)
            if placement_of(t) is not None:
                held.take_over(t)
            self.held[t.number] = held
            self._stale.discard(t._trial_id)
            return True
        return False

    def _place(self, trials: list[FrozenTrial], schedule: Schedule) -> bool:
        """Start the lowest-numbered trial waiting, if it is mine and its start is safe."""
        if not schedule.unplaced or schedule.unplaced[0].number not in self.held:
            return False
        event = schedule.next_start()
        if event is None:
            return False
        self._guarded(self.held[schedule.unplaced[0].number], lambda t: t.place(event, schedule.seen_at(event)))
        return True

    def _decide(self, trials: list[FrozenTrial], schedule: Schedule) -> bool:
        """Take the earliest computed evaluation of mine whose event is safe."""
        ready = [t for t in self.held.values() if t.placement is not None and not t.done and t.computed]
        if not ready:
            return False
        trial = min(ready, key=lambda t: t.next_event())
        event = trial.next_event()
        if not schedule.safe(event):
            return False
        ended = [t for t, has_ended in schedule.seen_at(event) if has_ended and t.number != trial.number]
        self._guarded(trial, lambda t: t.decide(ended))
        return True

    def _ask(self, trials: list[FrozenTrial], schedule: Schedule) -> bool:
        """Ask Optuna for the next trial, while this executor has room and the study needs one."""
        if len(self.held) >= self.capacity or any(t.placement is None for t in self.held.values()):
            return False
        if self.deadline is not None and time.monotonic() > self.deadline:
            return False
        needed = self.spec.request.n_trials - schedule.finished - len(schedule.running) - len(schedule.unplaced)
        if needed <= 0 or schedule.stop is not None:
            return False
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Heartbeat ... with Study.optimize": beaten here
            trial = self.study.ask()
        self.study._storage.record_heartbeat(trial._trial_id)
        self.held[trial.number] = LaneTrial(self.ctx, trial)
        return True

    def _compute(self, trials: list[FrozenTrial], schedule: Schedule) -> bool:
        """Train the trial of mine whose next evaluation comes earliest (the one others may wait for)."""
        waiting = [t for t in self.held.values() if t.placement is not None and not t.done and not t.computed]
        if not waiting:
            return False
        self._guarded(min(waiting, key=lambda t: t.next_event()), lambda t: t.compute())
        return True

    # -- bookkeeping --------------------------------------------------------------------------

    def _guarded(self, trial: LaneTrial, move: Callable[[LaneTrial], object]) -> None:
        """Make a move on one of my trials; one that another executor finished meanwhile (it took
        over a trial of mine that seemed dead) is dropped, one out of memory failed."""
        try:
            move(trial)
        except optuna.exceptions.UpdateFinishedTrialError:
            trial.done = True
        except TrialFailed:
            pass

    def _forget_ended(self, trials: list[FrozenTrial]) -> None:
        """Let go of my trials that ended, and of any another executor took over (this one was
        stopped past the grace period, SIGSTOP say, and then went on)."""
        states = {t.number: t for t in trials}
        for number, held in list(self.held.items()):
            stored = states.get(number)
            if stored is not None and not stored.state.is_finished() and taken_over(stored) > held.generation:
                held.release_run()
                del self.held[number]
                continue
            if held.done or (stored is not None and stored.state.is_finished()):
                held.release_run()
                del self.held[number]
                if stored is not None and stored.state.is_finished() and self.on_trial is not None:
                    self.on_trial(stored)

    def _mend(self, trials: list[FrozenTrial]) -> bool:
        """Undo what an executor stopped past the grace period wrote, as it went on, to a trial
        this one took over meanwhile: the move it had in flight places the trial (after this one
        claimed it unplaced) or lowers its horizon below this one's. Left so, its lane would wait
        for an event this executor has taken, and every lane would wait for ever. Called after
        `_forget_ended`, so every trial held is neither done nor finished. True: it mended."""
        states = {t.number: t for t in trials}
        mended = False
        for number, held in self.held.items():
            placement = placement_of(states[number]) if number in states else None
            if placement is None:
                continue
            if held.placement is None:  # placed by the other: trained from that start, as taken over
                held.take_over(states[number])
                mended = True
            elif placement.horizon < held.published:
                write_horizon(held.trial, held.published)
                mended = True
        return mended

    def _step_back_surplus(self, schedule: Schedule) -> None:
        """Trials asked for beyond what the study needed (executors asked at once), mine and any
        whose executor stopped: they end FAIL without training, and do not count."""
        stale = set(stale_trial_ids(self.study))
        for t in schedule.unplaced:
            if t.number in self.held or abandoned(t) or t._trial_id in stale:
                trial = self.held[t.number].trial if t.number in self.held else optuna.Trial(self.study, t._trial_id)
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                    write_failure(trial, "surplus", "surplus: the study had its trials")
                    self.study.tell(trial, state=TrialState.FAIL)
        self.held.clear()


class _Heartbeats:
    """A thread that records a heartbeat for every trial this executor holds, so that another
    executor takes them over if this one dies (Optuna's heartbeat, as study.optimize beats it)."""

    def __init__(self, study: optuna.Study, trial_ids: Callable[[], list[int]]) -> None:
        self.study, self.trial_ids = study, trial_ids
        self._failed_at = -float("inf")  # when a beat last failed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="lenet-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def failing(self) -> bool:
        """Whether a beat failed within the grace period: others may have judged mine stale too."""
        return time.monotonic() - self._failed_at < GRACE_SECONDS

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            for trial_id in list(self.trial_ids()):
                # A beat that fails (the storage gone past its bound) ends neither this thread
                # nor its trials: the next beat tries again, and the main thread says why it stops.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        self.study._storage.record_heartbeat(trial_id)
                    except STORAGE_FAILURES:
                        self._failed_at = time.monotonic()
