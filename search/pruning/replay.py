"""Replaying a finished study's learning curves through the saturation pruner, without
training: how much training a setting would have saved, which best it would have kept, and
which would-be winners it would have stopped (benchmarks/replay_pruner.py prints them).

In a study kept in the calibrated clock the replay is exact: the pruner sees the very seconds it
saw (or would have seen) in the study. The proposals are the study's own: a pruned study's
sampler would have proposed differently, so a replay ranks pruner settings rather than predicting
a study. Two ways to ask more of one study: replay it in other trial orders (a rule that judges
against few peers or an early leader decides differently when others came first), and replay
it at fewer evaluations per epoch (training does not depend on evaluation, so a curve thinned to
every k-th evaluation is the one such a run would have recorded).
"""

from __future__ import annotations

import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import optuna
from optuna.trial import TrialState

from search.pruning.curves import seconds_to_reach
from search.pruning.saturation import SaturationPruner
from search.records.keys import POINT_CLOCK_SECONDS, POINT_TRAIN_SECONDS, POINT_VAL_ACCURACY
from search.records.trial import CurvePoint, TrialRecord, write_config, write_curve


@dataclass(frozen=True)
class Replay:
    saved: float  # fraction of the source's training the pruner would have saved
    best: float | None  # best time to target kept, in the source's clock
    outcomes: Counter  # trials by how the replay ended them


def _scaled(curve: list[CurvePoint], factor: float) -> list[CurvePoint]:
    return [
        {
            **p,
            POINT_TRAIN_SECONDS: p[POINT_TRAIN_SECONDS] * factor,
            POINT_CLOCK_SECONDS: p[POINT_CLOCK_SECONDS] * factor,
        }
        for p in curve
    ]


def feed(
    study: optuna.Study, pruner: SaturationPruner, past: TrialRecord, curve: list[CurvePoint], target: float
) -> tuple[str, int]:
    """Ask a trial with `past`'s config and report `curve` evaluation by evaluation until it
    reaches the target or the pruner stops it: (outcome, evaluations trained). Not told."""
    trial = study.ask()
    write_config(trial, past.config)
    for i in range(1, len(curve) + 1):
        write_curve(trial, curve[:i])
        trial.report(1 - curve[i - 1][POINT_VAL_ACCURACY], i)
        if curve[i - 1][POINT_VAL_ACCURACY] >= target:
            return "reached", i
        if trial.should_prune():
            return pruner.decision_for(trial.number).rule, i
    return "budget", len(curve)


def records(source: optuna.Study, evals_per_epoch: int | None = None) -> list[TrialRecord]:
    """The source's trials that have a curve, in number order (the order a 1-lane study ran them),
    thinned to `evals_per_epoch` (None: as evaluated)."""
    found = sorted((r for r in map(TrialRecord.of, source.trials) if r.curve), key=lambda r: r.number)
    return found if evals_per_epoch is None else [thinned(r, evals_per_epoch) for r in found]


def _in_order(source: optuna.Study | Sequence[TrialRecord]) -> Sequence[TrialRecord]:
    """A study's records in number order, or the records given, in their order."""
    return records(source) if isinstance(source, optuna.Study) else source


def thinned(record: TrialRecord, evals_per_epoch: int) -> TrialRecord:
    """`record` as a run evaluated `evals_per_epoch` times an epoch would have stored it: every
    k-th evaluation, and its time to target interpolated between those. A run stops at the
    evaluation that reaches the target, so where that one is not kept it stays as the last point:
    the one approximation (its time to target is interpolated from an earlier evaluation)."""
    config = record.config
    if config is None or config.evals_per_epoch % evals_per_epoch:
        have = None if config is None else config.evals_per_epoch
        raise ValueError(f"trial {record.number} evaluated {have} times an epoch: cannot thin it to {evals_per_epoch}")
    every = config.evals_per_epoch // evals_per_epoch
    curve = [p for i, p in enumerate(record.curve) if (i + 1) % every == 0 or i == len(record.curve) - 1]
    points = [(p[POINT_CLOCK_SECONDS], p[POINT_VAL_ACCURACY]) for p in curve]
    reached = seconds_to_reach(points, record.target) if record.target is not None else None
    return replace(
        record,
        config=replace(config, evals_per_epoch=evals_per_epoch),
        curve=curve,
        clock_seconds_to_target=reached,
    )


def replay(
    source: optuna.Study | Sequence[TrialRecord],
    target: float,
    *,
    scale: Callable[[], float] | None = None,
    **settings: object,
) -> Replay:
    """`source`'s curves (a study's, in number order, or the records given, in their order)
    through a SaturationPruner with `settings`; `scale` draws a factor for each trial's seconds
    (timing noise), None for none."""
    pruner = SaturationPruner(target, **settings)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    spent = total = 0.0
    best, outcomes = None, Counter()
    for past in _in_order(source):
        factor = scale() if scale else 1.0
        curve = _scaled(past.curve, factor)
        outcome, at = feed(study, pruner, past, curve, target)
        spent += curve[at - 1][POINT_CLOCK_SECONDS]
        total += curve[-1][POINT_CLOCK_SECONDS]  # what the unpruned trial spent (it ran its whole curve)
        outcomes[outcome] += 1
        trial = study.trials[-1]
        if outcome == "reached":
            # The same curve reached the target at the same evaluation as in the source study,
            # so its time to target is the source's (interpolated, in its clock).
            seconds = (past.clock_seconds_to_target or curve[at - 1][POINT_CLOCK_SECONDS]) * factor
            study.tell(trial.number, seconds)
            best = seconds if best is None else min(best, seconds)
        else:
            study.tell(trial.number, state=TrialState.PRUNED)
    return Replay(1 - spent / total, best, outcomes)


def winners_stopped(
    source: optuna.Study | Sequence[TrialRecord], target: float, **settings: object
) -> tuple[int, list[tuple[int, int, str]]]:
    """Every pair of trials that reached the target, the slower one the only finished trial (the
    leader): would the pruner stop the faster one, a trial that would have won? (pairs, [(faster,
    leader, rule) for each stopped])."""
    reached = [r for r in _in_order(source) if r.clock_seconds_to_target is not None]
    pairs, stopped = 0, []
    for leader in reached:
        for faster in (r for r in reached if r.clock_seconds_to_target < leader.clock_seconds_to_target):
            pairs += 1
            pruner = SaturationPruner(target, **settings)
            study = optuna.create_study(direction="minimize", pruner=pruner)
            trial = study.ask()
            write_config(trial, leader.config)
            write_curve(trial, leader.curve)
            study.tell(trial, leader.clock_seconds_to_target)
            outcome, _ = feed(study, pruner, faster, faster.curve, target)
            if outcome != "reached":
                stopped.append((faster.number, leader.number, outcome))
    return pairs, stopped


@dataclass(frozen=True)
class Orders:
    """Replays of one study's trials in shuffled orders."""

    saved: list[float]  # each order's fraction of training saved
    lost: list[float | None]  # the best kept where it was not the study's (None: nothing reached)

    @property
    def orders(self) -> int:
        return len(self.saved)

    @property
    def kept(self) -> int:
        """Orders whose replay kept the study's best time to target."""
        return self.orders - len(self.lost)

    @property
    def median_saved(self) -> float:
        return statistics.median(self.saved)


def in_orders(found: Sequence[TrialRecord], target: float, orders: int, seed: int = 7, **settings: object) -> Orders:
    """`found` replayed in `orders` shuffled orders (seeded): how often the best is kept when
    other trials come first, so a rule judges against other peers and another early leader."""
    best = min((r.clock_seconds_to_target for r in found if r.clock_seconds_to_target is not None), default=None)
    rng = random.Random(seed)
    saved, lost = [], []
    for _ in range(orders):
        order = list(found)
        rng.shuffle(order)
        result = replay(order, target, **settings)
        saved.append(result.saved)
        if result.best is None or best is None or result.best > best:
            lost.append(result.best)
    return Orders(saved, lost)
