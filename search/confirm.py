"""Confirming the winner on fresh seeds: the best few candidates raced over common seeds.

Each search trial trains its schedule once, on the study's seed, so the search's best is one
draw: the default study's winner retrained on six seeds took 4.5 to 6.5 epochs. After the
search, the best `top` candidates (completed trials by time to target, and near misses the
cannot-win rule capped, by their cap) are trained again on `seeds` fresh seeds, the same
seeds for every candidate (common random numbers), and raced as SMAC's intensification and
irace do:

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
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import optuna

from lenet.clock import StepClock, seconds_of
from lenet.data import DeviceData
from lenet.train import EvalRecord, TrainingRun, crossing
from search.capped import capped_value
from search.record import STUDY_CONFIRMATION, TrialRecord, step_clock, study_record
from search.trials import completed

# Two candidates on four seeds: on the 100-trial default study three candidates on three seeds
# cost 18 % of the search's wall time; two on four cost fewer runs and give the winner's median
# one more seed (docs/search.md, "Confirmation").
DEFAULT_TOP = 2
DEFAULT_SEEDS = 4
SEED_OFFSET = 1000  # confirmation seeds: study seed + 1000, + 1001, ...: never a search trial's


@dataclass(frozen=True)
class ConfirmRun:
    trial: int
    seed: int
    seconds: float | None  # time to target in the study's clock; None: not reached
    cap: float | None  # the incumbent's time (or bound) on this seed, when the run was capped by it
    stopped_at_cap: bool  # it trained `cap` seconds without reaching the target: its time is more
    measured: float | None  # measured seconds to target
    epochs: float
    # `cap` is where its time stops mattering to the ranking and the medians (not a rival's time):
    # a capped run taken up again, or an incumbent's seed stopped once its median was exact.
    bounded: bool = False

    @property
    def lower_bound(self) -> float:
        """What its time to target is at least (inf: never reached within the budget)."""
        if self.seconds is not None:
            return self.seconds
        return self.cap if self.stopped_at_cap and self.cap is not None else math.inf

    @property
    def exact(self) -> bool:
        return self.seconds is not None or not self.stopped_at_cap


@dataclass
class Confirmation:
    """The race's state, as stored in the study."""

    seeds: list[int]
    candidates: list[int]  # trial numbers in the order they were raced
    runs: list[ConfirmRun] = field(default_factory=list)
    incumbent: int | None = None
    dropped: dict[int, str] = field(default_factory=dict)
    done: bool = False

    def run_of(self, trial: int, seed: int) -> ConfirmRun | None:
        return next((r for r in self.runs if r.trial == trial and r.seed == seed), None)

    def runs_of(self, trial: int) -> list[ConfirmRun]:
        return [r for r in (self.run_of(trial, s) for s in self.seeds) if r is not None]

    def median(self, trial: int) -> float:
        """Median time to target over the seeds (a lower bound where runs stopped at a cap)."""
        values = [r.lower_bound for r in self.runs_of(trial)]
        return statistics.median(values) if values else math.inf

    def median_decided(self, trial: int) -> bool:
        """Whether the median is exact although some runs stopped at a cap: it is the same
        whether their times are their caps or anything longer."""
        runs = self.runs_of(trial)
        at_most = [r.lower_bound if r.exact else math.inf for r in runs]
        return bool(runs) and statistics.median(at_most) == self.median(trial)

    def beats(self, trial: int, median: float) -> bool | None:
        """Whether `trial`'s median is below `median` whatever its capped runs' times: True
        even if none of them ever reaches the target, False even if each reaches it at its
        bound, None while that depends on them."""
        runs = self.runs_of(trial)
        if statistics.median([r.lower_bound if r.exact else math.inf for r in runs]) < median:
            return True
        if statistics.median([r.lower_bound for r in runs]) >= median:
            return False
        return None

    def next_rerun(self, trial: int, median: float) -> tuple[int, float | None]:
        """The capped run of `trial` to run again while `beats` is undecided, lowest bound
        first, and the cap beyond which its time could not move `trial`'s median below
        `median` (None: no cap). See the module docstring for the bound."""
        runs = self.runs_of(trial)

        def bound(run: ConfirmRun) -> float:
            return median if len(runs) % 2 else 2 * median - min(r.lower_bound for r in runs if r is not run)

        # Once every capped run has reached its bound, `beats` is decided (docs/search.md,
        # "Confirmation on fresh seeds", has the argument), so one is left while it is not.
        return _lowest_below_bound(trial, runs, bound)

    def next_to_settle(self, trial: int) -> tuple[int, float | None]:
        """The capped run of `trial` to run again while its median is not exact, lowest bound
        first, and the cap past which it lies above the median's middle values whatever the
        other runs' times: the upper middle of the others, a capped one counted as never
        reaching the target (None: no cap)."""
        runs = self.runs_of(trial)

        def bound(run: ConfirmRun) -> float:
            others = sorted(r.lower_bound if r.exact else math.inf for r in runs if r is not run)
            return others[len(runs) // 2] if len(runs) > 1 else math.inf

        # Once every capped run lies above the middle, the median is exact.
        return _lowest_below_bound(trial, runs, bound)

    def ranking(self) -> list[CandidateSummary]:
        rows = [self.summary(t) for t in self.candidates if self.runs_of(t)]
        return sorted(rows, key=lambda r: (r.trial != self.incumbent, r.median))

    def summary(self, trial: int) -> CandidateSummary:
        runs = self.runs_of(trial)
        bounds = [r.lower_bound for r in runs]
        return CandidateSummary(trial, runs, statistics.median(bounds), min(bounds), max(bounds),
                                all(r.exact for r in runs), self.median_decided(trial),
                                self.dropped.get(trial))  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["dropped"] = {str(k): v for k, v in self.dropped.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confirmation:
        return cls(
            seeds=list(d["seeds"]), candidates=list(d["candidates"]),
            runs=[ConfirmRun(**_renamed(r)) for r in d.get("runs", [])], incumbent=d.get("incumbent"),
            dropped={int(k): v for k, v in (d.get("dropped") or {}).items()}, done=bool(d.get("done")),
        )  # fmt: skip


def _lowest_below_bound(
    trial: int, runs: list[ConfirmRun], bound: Callable[[ConfirmRun], float]
) -> tuple[int, float | None]:
    """The seed of the capped run with the lowest bound among those still below `bound`, and
    that bound as its new cap (None: no cap)."""
    below = [r for r in runs if not r.exact and r.lower_bound < bound(r)]
    if not below:
        raise AssertionError(f"trial {trial}: no capped run left below its bound, yet the race is undecided")
    run = min(below, key=lambda r: r.lower_bound)
    cap = bound(run)
    return run.seed, None if math.isinf(cap) else cap


def _renamed(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run with today's field names (`bounded` was `rerun` at commit b340d8d)."""
    return {("bounded" if k == "rerun" else k): v for k, v in run.items()}


@dataclass(frozen=True)
class CandidateSummary:
    trial: int
    runs: list[ConfirmRun]
    median: float
    low: float
    high: float
    exact: bool  # every time is exact (none stopped at a cap): `high` is exact too
    median_exact: bool  # the median is exact (the capped runs lie above it), else a lower bound
    dropped: str | None

    def times_text(self) -> str:
        def one(r: ConfirmRun) -> str:
            if r.seconds is not None:
                return f"{r.seconds:.1f}"
            return f">{r.cap:.1f}" if r.stopped_at_cap and r.cap is not None else "not reached"

        return ", ".join(one(r) for r in self.runs)


def confirmation_of(study: optuna.Study) -> Confirmation | None:
    record = study_record(study)
    return Confirmation.from_dict(record.confirmation) if record and record.confirmation else None


def candidates(study: optuna.Study, top: int) -> list[int]:
    """The best `top` trials: completed ones by time to target, then capped near misses by
    their cap (a lower bound on their time), merged in that order of value."""
    trials = study.get_trials(deepcopy=False)
    ranked = [(t.value, 0, t.number) for t in completed(trials)]
    ranked += [(cap, 1, t.number) for t in trials if (cap := capped_value(t)) is not None]
    return [number for _, _, number in sorted(ranked)[:top]]


RunCallback = Callable[[ConfirmRun], None]


def confirm(
    study: optuna.Study,
    data: DeviceData,
    *,
    top: int = DEFAULT_TOP,
    n_seeds: int = DEFAULT_SEEDS,
    threads: int | None = None,
    on_run: RunCallback | None = None,
) -> Confirmation | None:
    """Race the study's best `top` candidates over `n_seeds` fresh seeds (see the module
    docstring), resuming a stored race. Returns None when there is no candidate."""
    record = study_record(study)
    if record is None or top < 1 or n_seeds < 1:
        return None
    chosen = candidates(study, top)
    if not chosen:
        return None
    stored = confirmation_of(study)
    seeds = [record.seed + SEED_OFFSET + i for i in range(n_seeds)]
    if stored and stored.candidates == chosen and stored.seeds == seeds:
        race = stored
    else:  # new search trials (or other settings) since: race again, keeping the exact runs
        keep = [r for r in (stored.runs if stored else []) if r.exact and r.trial in chosen and r.seed in seeds]
        race = Confirmation(seeds, chosen, runs=keep)
    if race.done:
        return race
    racer = _Racer(study, race, data, step_clock(record), record.target, threads, on_run)
    racer.run()
    return race


def _close(value: float, other: float) -> str:
    """`value` with one decimal, or two where one would print it equal to `other`."""
    return f"{value:.1f}" if f"{value:.1f}" != f"{other:.1f}" or value == other else f"{value:.2f}"


class _Racer:
    def __init__(self, study, race: Confirmation, data, clock: StepClock | None, target: float, threads, on_run):
        self.study, self.race, self.data, self.clock = study, race, data, clock
        self.target, self.threads, self.on_run = target, threads, on_run
        self.configs = {t.number: TrialRecord.of(t).config for t in study.get_trials(deepcopy=False)}
        self.suspended: dict[tuple[int, int], TrainingRun] = {}  # (trial, seed): runs paused at a cap

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
                return
        # Better on the median of its bounds: its capped seeds run again as far as the ranking needs.
        target = race.median(race.incumbent)
        while (wins := race.beats(challenger, target)) is None:
            seed, cap = race.next_rerun(challenger, target)
            self._ensure(challenger, seed, cap=cap, bounded=True)  # replaces the capped run
        if wins:
            race.dropped[race.incumbent] = f"beaten on the median by trial {challenger}"
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
        self._save()

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
            run = live[seed]
            return seconds_of(self.clock, run.config, run.history[-1]) if run.history else 0.0

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

    def _start(self, trial: int, seed: int) -> TrainingRun:
        """`trial`'s run on `seed`: the one left suspended at a cap, else a new one."""
        run = self.suspended.pop((trial, seed), None)
        if run is None:
            run = TrainingRun(replace(self.configs[trial], seed=seed), self.data, threads=self.threads)
        return run

    def _store(self, run: ConfirmRun) -> None:
        """Keep `run` (replacing a capped run of the same trial and seed), save, report."""
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

    def _train(self, trial: int, seed: int, cap: float | None) -> ConfirmRun:
        """Train `trial`'s schedule on `seed` until it reaches the target, reaches `cap` in the
        study's clock, or spends its budget. A run stopped at its cap is kept suspended: should
        the ranking need more of it, it continues from there instead of training again."""
        run = self._start(trial, seed)

        def at_cap() -> bool:
            return cap is not None and bool(run.history) and seconds_of(self.clock, run.config, run.history[-1]) >= cap

        reached = bool(run.history) and run.history[-1].val_accuracy >= self.target
        while not reached and not at_cap() and (record := run.advance()) is not None:
            reached = record.val_accuracy >= self.target
        result = self._result(trial, seed, run, cap)
        if result.stopped_at_cap:
            self.suspended[(trial, seed)] = run
        return result

    def _result(self, trial: int, seed: int, run: TrainingRun, cap: float | None) -> ConfirmRun:
        """What `run` says so far: its time to target, or that it trained `cap` without reaching it."""
        config, clock = run.config, self.clock

        def seconds(r: EvalRecord) -> float:
            return seconds_of(clock, config, r)

        cross = crossing(run.history, self.target)
        last = run.history[-1] if run.history else None
        return ConfirmRun(
            trial=trial,
            seed=seed,
            seconds=cross.interpolate(seconds) if cross else None,
            cap=cap,
            stopped_at_cap=cross is None and cap is not None and last is not None and seconds(last) >= cap,
            measured=cross.interpolate(lambda r: r.train_seconds) if cross else None,
            epochs=last.epoch if last else 0.0,
        )

    def _save(self) -> None:
        self.study.set_user_attr(STUDY_CONFIRMATION, self.race.to_dict())
