"""Confirming the winner on fresh seeds: the best few candidates raced over common seeds.

Each search trial trains its schedule once, on the study's seed, so the search's best is one
draw (docs/search.md, "Confirmation on fresh seeds"). After the search, the best `top`
candidates (completed trials by time to target, and near misses the cannot-win rule capped, by
their cap) are trained again on `seeds` fresh seeds, the same seeds for every candidate (common
random numbers), and raced as SMAC's intensification and irace do:

- the incumbent (the search's best) runs on every seed, in lockstep (the run with the least
  training so far takes its next evaluation) until its median is exact: runs still going then
  lie above the median's middle values and stop there, suspended;
- a challenger runs seed by seed with a cap, the incumbent's time on that seed: once it has
  trained that long without reaching the target it cannot beat the incumbent there, and it
  stops (its time is then only known to be at least the cap);
- a challenger drops as soon as it cannot win on the median, even if every seed it has still
  to run were instant;
- a challenger whose median (of its bounds) is better has its capped seeds run again only as
  far as the ranking needs, lowest bound first, and stops as soon as it is decided: once its
  median is better even with every capped seed never reaching the target, it becomes the
  incumbent; once it is no better even with every capped seed reaching it at its bound, it
  drops. Each such rerun is capped where its time stops mattering: with the incumbent's
  median M, at M for an odd number of seeds, and at 2M - m for an even one (m the smallest of
  the challenger's other times: a middle value of 2M - m or more puts the median at M or
  more);
- a new incumbent's capped seeds then run on until its median is exact (it is what the race
  reports and what the next challenger must beat), each only until it lies above the middle.

A rerun continues the capped run where it stopped (it was left suspended), so no step is
trained twice. Capped runs that neither the ranking nor the median needed leave the range
open at the top ("more than").

Candidates are ranked by their median time to target in the study's clock. Every finished
run is stored in the study at once (`StudyRecord`'s confirmation), so an interrupted
confirmation resumes where it stopped, and `--trials` counts search trials only.

Several hosts that finish one study's search race it once: the one that claims it races, the
others wait for the stored race and report it (search/confirm/lease.py).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import optuna

from lenet.clock import StepClock
from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.members import MemberRun, PopulationPool
from lenet.train import TrainingRun
from search.clock.pricing import clock_seconds, time_to_target
from search.confirm.lease import JOIN_POLL_SECONDS, Lease, LostClaim
from search.confirm.race import DEFAULT_SEEDS, DEFAULT_TOP, SEED_OFFSET, Confirmation, SeedRun, confirmation_of
from search.records.keys import STUDY_CONFIRMATION
from search.records.study import study_record
from search.records.trial import TrialRecord
from search.sampling.capped import capped_value
from search.study.queries import completed


def candidates(study: optuna.Study, top: int) -> list[int]:
    """The best `top` trials: completed ones by time to target, then capped near misses by
    their cap (a lower bound on their time), merged in that order of value."""
    trials = study.get_trials(deepcopy=False)
    ranked = [(t.value, 0, t.number) for t in completed(trials)]
    ranked += [(cap, 1, t.number) for t in trials if (cap := capped_value(t)) is not None]
    return [number for _, _, number in sorted(ranked)[:top]]


RunCallback = Callable[[SeedRun], None]
Key = tuple[int, int]  # (trial, seed)


class Run(Protocol):
    """A training run as the racer reads it: `lenet.train.TrainingRun`, or one in a helper process
    (search/confirm/pool.py)."""

    config: TrainConfig
    history: list[EvalRecord]

    def advance(self) -> EvalRecord | None: ...


class Runs(Protocol):
    """Where the racer's runs train; `trains_ahead` when a run started trains before it is read."""

    trains_ahead: bool

    def run(self, key: Key, config: TrainConfig) -> Run: ...

    def drop(self, key: Key) -> None: ...


class LocalRuns:
    """The runs in this process, one at a time, with `threads` torch threads."""

    trains_ahead = False  # a run trains only as it is read: starting one early gains nothing

    def __init__(self, data: DeviceData, threads: int | None) -> None:
        self.data, self.threads = data, threads

    def run(self, key: Key, config: TrainConfig) -> Run:
        return TrainingRun(config, self.data, threads=self.threads)

    def drop(self, key: Key) -> None:
        pass


class PopulationRuns:
    """The runs in this process as members of populations `slots` wide (lenet/members.py), as a
    population study's trials trained: each run's arithmetic is a member's, whoever shares its
    population, and a candidate's seeds, started together, train as one model (on a card, one
    launch per step for all of them)."""

    trains_ahead = True  # a challenger's seeds start together, so that they share a population

    def __init__(self, data: DeviceData, slots: int, threads: int | None) -> None:
        self.pool, self.threads = PopulationPool(data, slots), threads
        self.started: dict[Key, MemberRun | TrainingRun] = {}

    def run(self, key: Key, config: TrainConfig) -> Run:
        run = self.pool.run(config, threads=self.threads)
        if isinstance(run, MemberRun):
            self.pool.seat(run)
        self.started[key] = run
        return run

    def drop(self, key: Key) -> None:
        run = self.started.pop(key, None)
        if isinstance(run, MemberRun):
            run.release()  # its slot takes the next run


def confirm(
    study: optuna.Study,
    data: DeviceData,
    *,
    top: int = DEFAULT_TOP,
    n_seeds: int = DEFAULT_SEEDS,
    threads: int | None = None,
    on_run: RunCallback | None = None,
    runs: Runs | None = None,
) -> Confirmation | None:
    """Race the study's best `top` candidates over `n_seeds` fresh seeds (see the module
    docstring), resuming a stored race. Returns None when there is no candidate. The runs train
    in this process with `threads` threads, or where `runs` puts them.

    On a database several hosts may call it at once: the one whose claim goes in races, and
    beats a heartbeat while it does; another waits for the stored race to be done, calling
    `on_run` for each run as it is stored, and returns it (its `joined` names the host that ran
    it). A claim released partway, or whose owner stopped beating for the grace period, is taken
    over: the race goes on from where it was stored (search/confirm/lease.py)."""
    record = study_record(study)
    if record is None or top < 1 or n_seeds < 1:
        return None
    if runs is None and record.population > 1:  # its seeds as its trials trained: in populations
        runs = PopulationRuns(data, record.population, threads)
    chosen = candidates(study, top)
    if not chosen:
        return None
    seeds = [record.seed + SEED_OFFSET + i for i in range(n_seeds)]
    clock = record.step_clock()
    lease = Lease.of(study)
    if lease is None:  # in memory: this process is the only one
        race = _race(confirmation_of(study), chosen, seeds)
        if not race.done:
            _Racer(study, race, data, clock, record.target, threads, on_run, runs).run()
        return race
    shown: set[SeedRun] = set()  # the runs on_run was given

    def report(run: SeedRun) -> None:
        shown.add(run)
        if on_run is not None:
            on_run(run)

    def show(race: Confirmation) -> None:
        for run in race.runs:  # what another host stored since this one last looked
            if run not in shown:
                report(run)

    joined: str | None = None
    claim_lost = False
    while True:
        race = _race(confirmation_of(study), chosen, seeds)
        if race.done:
            if joined is not None:
                show(race)
            race.joined, race.claim_lost = joined, claim_lost and joined is not None
            return race
        holder = lease.holder()
        if holder is None and lease.last_owner is not None:  # released: done just now, perhaps
            race = _race(confirmation_of(study), chosen, seeds)
            if race.done:
                show(race)
                race.joined, race.claim_lost = lease.last_owner, claim_lost
                return race
        if holder is None and lease.claim():
            try:
                race = _race(confirmation_of(study), chosen, seeds)  # as stored once claimed
                if not race.done:
                    _Racer(study, race, data, clock, record.target, threads, report, runs, guard=lease.check).run()
                return race
            except LostClaim:
                # Another host took it over (this one seemed dead): wait for it, as for any other;
                # the taker may have finished before this host looks again, so name it now.
                joined, claim_lost = lease.taker(), True
            finally:
                lease.release()
        elif holder is not None:
            joined = holder.owner
            show(race)
            time.sleep(JOIN_POLL_SECONDS)


def _race(stored: Confirmation | None, chosen: list[int], seeds: list[int]) -> Confirmation:
    """The stored race if it is of these candidates on these seeds; else a new one, keeping the
    stored exact runs that it needs (new search trials, or other settings, since)."""
    if stored and stored.candidates == chosen and stored.seeds == seeds:
        return stored
    keep = [r for r in (stored.runs if stored else []) if r.exact and r.trial in chosen and r.seed in seeds]
    return Confirmation(seeds, chosen, runs=keep)


def _close(value: float, other: float) -> str:
    """`value` with one decimal, or two where one would print it equal to `other`."""
    return f"{value:.1f}" if f"{value:.1f}" != f"{other:.1f}" or value == other else f"{value:.2f}"


class _Racer:
    def __init__(
        self,
        study: optuna.Study,
        race: Confirmation,
        data: DeviceData,
        clock: StepClock | None,
        target: float,
        threads: int | None,
        on_run: RunCallback | None,
        runs: Runs | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self.study, self.race, self.data, self.clock = study, race, data, clock
        self.target, self.threads, self.on_run = target, threads, on_run
        self.guard = guard  # before each write of the race: raises where this host may no longer write it
        self.runs = runs or LocalRuns(data, threads)
        self.configs = {t.number: TrialRecord.of(t).config for t in study.get_trials(deepcopy=False)}
        self.suspended: dict[Key, Run] = {}  # (trial, seed): runs paused at a cap, or started ahead

    def run(self) -> None:
        race = self.race
        if race.incumbent is None:
            race.incumbent = race.candidates[0]
        self._run_incumbent(race.incumbent)
        for challenger in race.candidates:
            if challenger == race.incumbent or challenger in race.dropped:
                continue
            self._challenge(challenger)
        race.done = True
        self._save()

    def _challenge(self, challenger: int) -> None:
        race = self.race
        self._start_ahead(challenger)
        for i, seed in enumerate(race.seeds):
            cap = race.run_of(race.incumbent, seed).lower_bound
            self._ensure(challenger, seed, cap=None if math.isinf(cap) else cap)
            # Optimistic: every seed still to run instant. If even so its median is no better, it drops.
            bounds = [r.lower_bound for r in race.runs_of(challenger)] + [0.0] * (len(race.seeds) - i - 1)
            if statistics.median(bounds) >= race.median(race.incumbent):
                race.dropped[challenger] = (
                    f"cannot win on the median after {i + 1} of {len(race.seeds)} seeds "
                    f"(at least {statistics.median(bounds):.1f} s against {race.median(race.incumbent):.1f} s)"
                )
                self._save()
                self._forget(challenger)
                return
        # Better on the median of its bounds: its capped seeds run again as far as the ranking needs.
        target = race.median(race.incumbent)
        while (wins := race.beats(challenger, target)) is None:
            seed, cap = race.next_rerun(challenger, target)
            self._ensure(challenger, seed, cap=cap, bounded=True)  # replaces the capped run
        if wins:
            race.dropped[race.incumbent] = f"beaten on the median by trial {challenger}"
            self._forget(race.incumbent)
            race.incumbent = challenger
            # The winner's median is what the race reports and the next challenger must beat:
            # its capped seeds run again until it is exact (each only until it lies above the middle).
            while not race.median_decided(challenger):
                seed, cap = race.next_to_settle(challenger)
                self._ensure(challenger, seed, cap=cap, bounded=True)
        else:
            mine = race.median(challenger)
            race.dropped[challenger] = (
                f"no better on the median once its capped seeds ran again "
                f"(at least {_close(mine, target)} s against {_close(target, mine)} s)"
            )
            self._forget(challenger)
        self._save()

    def _forget(self, trial: int) -> None:
        """`trial` has left the race: its suspended runs will not be read again."""
        for key in [k for k in self.suspended if k[0] == trial]:
            del self.suspended[key]
            self.runs.drop(key)

    def _run_incumbent(self, trial: int) -> None:
        """The incumbent on every seed, in lockstep: the run with the least training so far takes
        its next evaluation, until the median is exact. The runs still going then lie above the
        median's middle values (they have trained longer than those took); they stop there, at
        that bound, suspended, and the range stays open at the top ("more than")."""
        race = self.race
        if len(race.runs_of(trial)) == len(race.seeds) and race.median_decided(trial):
            return
        live = {s: self._start(trial, s) for s in race.seeds if (r := race.run_of(trial, s)) is None or not r.exact}

        def trained(seed: int) -> float:
            return self._trained(live[seed])

        def settled() -> bool:
            done = [r.lower_bound for r in race.runs_of(trial) if r.exact]
            at_least = done + [trained(s) for s in live]
            return statistics.median(at_least) == statistics.median(done + [math.inf] * len(live))

        # Every run takes its first evaluation before the median can be settled: an unstarted run
        # has no bound of its own to stop at.
        while live and (not all(run.history for run in live.values()) or not settled()):
            seed = min(live, key=lambda s: (trained(s), s))
            record = live[seed].advance()
            if record is None or record.val_accuracy >= self.target:  # reached, or out of budget
                self._store(self._result(trial, seed, live.pop(seed), cap=None))
        for seed, run in live.items():
            self.suspended[(trial, seed)] = run
            self._store(replace(self._result(trial, seed, run, cap=trained(seed)), bounded=True))

    def _start(self, trial: int, seed: int) -> Run:
        """`trial`'s run on `seed`: the one left suspended (at a cap, or started ahead), else a new one."""
        run = self.suspended.pop((trial, seed), None)
        if run is None:
            run = self.runs.run((trial, seed), replace(self.configs[trial], seed=seed))
        return run

    def _start_ahead(self, trial: int) -> None:
        """Start `trial`'s runs that the race may need, so that runs in helpers train ahead."""
        if not self.runs.trains_ahead:
            return
        for seed in self.race.seeds:
            done = self.race.run_of(trial, seed)
            if (done is None or not done.exact) and (trial, seed) not in self.suspended:
                self.suspended[(trial, seed)] = self.runs.run((trial, seed), replace(self.configs[trial], seed=seed))

    def _store(self, run: SeedRun) -> None:
        """Keep `run` (replacing a capped run of the same trial and seed), save, report; an exact
        run's training is done."""
        if run.exact:
            self.runs.drop((run.trial, run.seed))
        stale = self.race.run_of(run.trial, run.seed)
        if stale is not None:
            self.race.runs.remove(stale)
        self.race.runs.append(run)
        self._save()
        if self.on_run is not None:
            self.on_run(run)

    def _ensure(self, trial: int, seed: int, cap: float | None, bounded: bool = False) -> None:
        """Run `trial` on `seed` unless a run that answers the same question is stored."""
        done = self.race.run_of(trial, seed)
        if done is not None and (done.exact or (cap is not None and done.cap is not None and done.cap >= cap)):
            return
        run = self._train(trial, seed, cap)
        self._store(replace(run, bounded=True) if bounded else run)

    def _train(self, trial: int, seed: int, cap: float | None) -> SeedRun:
        """Train `trial`'s schedule on `seed` until it reaches the target, reaches `cap` in the
        study's clock, or spends its budget. A run stopped at its cap is kept suspended: should
        the ranking need more of it, it continues from there instead of training again."""
        run = self._start(trial, seed)

        def at_cap() -> bool:
            return cap is not None and bool(run.history) and self._trained(run) >= cap

        reached = bool(run.history) and run.history[-1].val_accuracy >= self.target
        while not reached and not at_cap() and (record := run.advance()) is not None:
            reached = record.val_accuracy >= self.target
        result = self._result(trial, seed, run, cap)
        if result.stopped_at_cap:
            self.suspended[(trial, seed)] = run
        return result

    def _result(self, trial: int, seed: int, run: TrainingRun, cap: float | None) -> SeedRun:
        """What `run` says so far: its time to target, or that it trained `cap` without reaching it."""
        reached = time_to_target(run.history, self.target, run.config, self.clock)
        return SeedRun(
            trial=trial,
            seed=seed,
            seconds=reached.clock_seconds if reached else None,
            cap=cap,
            stopped_at_cap=reached is None and cap is not None and bool(run.history) and self._trained(run) >= cap,
            measured=reached.measured_seconds if reached else None,
            epochs=run.history[-1].epoch if run.history else 0.0,
        )

    def _trained(self, run: TrainingRun) -> float:
        """The run's training so far in the study's clock."""
        return clock_seconds(self.clock, run.config, run.history[-1]) if run.history else 0.0

    def _save(self) -> None:
        if self.guard is not None:
            self.guard()
        self.study.set_user_attr(STUDY_CONFIRMATION, self.race.to_dict())
