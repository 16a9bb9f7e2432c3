"""Across machines: several studies of the same search, each in its own machine's clock, their
winners, and each winner priced in every other study's clock (`lenet-search compare`).

A study's clock says what a step costs, at each batch size, on the machine (and setting) that
made it; each trial's curve records its steps. So one study's winner can be priced on another
machine without training it there (search/clock/reprice.py), and the fastest batch size of each
machine read off its trials: the journal's question of how the fastest training differs between
machines, answered from the studies themselves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import optuna

from lenet.clock import StepClock
from search.clock.reprice import Priced, Trained, price
from search.confirm.race import Confirmation, confirmation_of
from search.errors import StudyError
from search.records.study import study_record
from search.records.trial import TrialRecord
from search.study.opening import load_existing
from search.study.queries import best_completed
from search.study.storage import opened, shown_url


@dataclass(frozen=True)
class Machine:
    """One study, as the comparison sees it."""

    label: str  # STORAGE:NAME as given, its password masked
    name: str
    clock: StepClock
    winner: TrialRecord  # the confirmed winner, else the search's best
    confirmed_median: float | None  # the winner's confirmed median in this clock, if it was raced
    best_by_batch: dict[int, float]  # the fastest time to target of the trials at each batch size, here


@dataclass(frozen=True)
class Comparison:
    machines: list[Machine]
    # winner of machine i priced in the clock of machine j: priced[i][j] (None: a batch size j has no cost for)
    priced: list[list[Priced | None]]


def compare(targets: Sequence[str]) -> Comparison:
    """The studies named STORAGE:NAME, compared (see the module docstring)."""
    machines = [_machine(target) for target in targets]
    if len({m.clock.train_size for m in machines}) > 1:
        raise StudyError("the studies trained on different numbers of images: their clocks do not price each other")
    targets_of = {m.winner.target for m in machines}
    if len(targets_of) > 1:
        raise StudyError(
            f"the studies have different targets ({', '.join(map(str, sorted(targets_of)))}): "
            "their times to target do not compare"
        )
    priced = [[_price(m.winner, other.clock) for other in machines] for m in machines]
    return Comparison(machines, priced)


def _machine(target: str) -> Machine:
    storage_url, _, name = target.rpartition(":")
    if not storage_url or not name or "/" in name or "@" in name:
        raise StudyError(f"{shown_url(target)!r} is not STORAGE:NAME (e.g. sqlite:///studies/lenet.db:lenet5-cifar10)")
    with opened(storage_url) as storage:
        study = load_existing(storage, name)
        record = study_record(study)
        clock = record.step_clock() if record else None
        if clock is None:
            raise StudyError(f"study {name!r} read the wall clock: it has no step clock to price others in")
        trials = study.get_trials(deepcopy=False)
        race = confirmation_of(study)
        winner = _winner(study, race, trials)
        median = race.median(race.incumbent) if race and race.done and race.incumbent == winner.number else None
    best: dict[int, float] = {}
    for t in trials:
        r = TrialRecord.of(t)
        if r.config is not None and r.clock_seconds_to_target is not None:
            b = r.config.batch_size
            best[b] = min(best.get(b, math.inf), r.clock_seconds_to_target)
    return Machine(
        f"{shown_url(storage_url)}:{name}",
        name,
        clock,
        winner,
        median if median is None or math.isfinite(median) else None,
        best,
    )


def _winner(study: optuna.Study, race: Confirmation | None, trials: list[optuna.trial.FrozenTrial]) -> TrialRecord:
    if race is not None and race.done and race.incumbent is not None:
        return TrialRecord.of(next(t for t in trials if t.number == race.incumbent))
    best = best_completed(trials)
    if best is None:
        raise StudyError(f"no trial of study {study.study_name!r} reached its target: it has no winner to compare")
    return TrialRecord.of(best)


def _price(record: TrialRecord, clock: StepClock) -> Priced | None:
    trained = Trained.of(record)
    if trained is None or clock.covers([trained.config.batch_size], [trained.config.augment]):
        return None
    return price(trained, clock)
