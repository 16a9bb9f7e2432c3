"""The confirmation race's data and rules: each candidate's runs on the fresh seeds, what
their times are known to be (exact, or at least a cap), and what decides the ranking.

The race itself (who runs on which seed, how far) is search/confirm/racer.py's; the rules are
set out there and in docs/search.md, "Confirmation on fresh seeds". The race is stored in the
study (`StudyRecord.confirmation`, written by the racer after every run).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from search.records.study import study_record

# Two candidates on four seeds: on the 100-trial default study three candidates on three seeds
# cost 18 % of the search's wall time; two on four cost fewer runs and give the winner's median
# one more seed (docs/search.md, "Confirmation").
DEFAULT_TOP = 2
DEFAULT_SEEDS = 4
SEED_OFFSET = 1000  # confirmation seeds: study seed + 1000, + 1001, ...: never a search trial's


@dataclass(frozen=True)
class SeedRun:
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
    runs: list[SeedRun] = field(default_factory=list)
    incumbent: int | None = None
    dropped: dict[int, str] = field(default_factory=dict)
    done: bool = False
    # Not stored: the owner (host:pid:...) of the claim whose race this host waited for instead
    # of running it (search/confirm/lease.py); None where this host ran it, or found it done.
    joined: str | None = field(default=None, compare=False)
    # Not stored: this host raced part of it before another took its claim over (it seemed dead).
    claim_lost: bool = field(default=False, compare=False)

    def run_of(self, trial: int, seed: int) -> SeedRun | None:
        return next((r for r in self.runs if r.trial == trial and r.seed == seed), None)

    def runs_of(self, trial: int) -> list[SeedRun]:
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

        def bound(run: SeedRun) -> float:
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

        def bound(run: SeedRun) -> float:
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
        return CandidateSummary(
            trial,
            runs,
            statistics.median(bounds),
            min(bounds),
            max(bounds),
            all(r.exact for r in runs),
            self.median_decided(trial),
            self.dropped.get(trial),
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        del d["joined"], d["claim_lost"]
        d["dropped"] = {str(k): v for k, v in self.dropped.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Confirmation:
        return cls(
            seeds=list(d["seeds"]),
            candidates=list(d["candidates"]),
            runs=[SeedRun(**r) for r in d.get("runs", [])],
            incumbent=d.get("incumbent"),
            dropped={int(k): v for k, v in (d.get("dropped") or {}).items()},
            done=bool(d.get("done")),
        )


def _lowest_below_bound(trial: int, runs: list[SeedRun], bound: Callable[[SeedRun], float]) -> tuple[int, float | None]:
    """The seed of the capped run with the lowest bound among those still below `bound`, and
    that bound as its new cap (None: no cap)."""
    below = [r for r in runs if not r.exact and r.lower_bound < bound(r)]
    if not below:
        raise AssertionError(f"trial {trial}: no capped run left below its bound, yet the race is undecided")
    run = min(below, key=lambda r: r.lower_bound)
    cap = bound(run)
    return run.seed, None if math.isinf(cap) else cap


@dataclass(frozen=True)
class CandidateSummary:
    trial: int
    runs: list[SeedRun]
    median: float
    low: float
    high: float
    exact: bool  # every time is exact (none stopped at a cap): `high` is exact too
    median_exact: bool  # the median is exact (the capped runs lie above it), else a lower bound
    dropped: str | None


def confirmation_of(study: optuna.Study) -> Confirmation | None:
    record = study_record(study)
    return Confirmation.from_dict(record.confirmation) if record and record.confirmation else None
