"""How soon did a study find its answer? The trials and the wall time until the study's best
first came within a margin (5 % by default) of its final confirmed best (the confirmed
winner's median), and until it had trained the schedule it confirmed; e.g. for a
warm-started study against a cold one with the same seed.

    python benchmarks/time_to_best.py sqlite:///studies/lenet.db:warm20 sqlite:///studies/cold.db:cold20

A study is given as STORAGE:NAME. Trials are read in the order they finished on the machine;
the wall time runs from the first trial's start to the finish of the trial that got there.
"""

from __future__ import annotations

import argparse

import optuna

from search.confirm.race import confirmation_of
from search.study.queries import FINISHED
from search.study.storage import opened


def time_to_best(study: optuna.Study, margin: float) -> str:
    race = confirmation_of(study)
    if race is None or not race.done or race.incumbent is None:
        return "no finished confirmation race"
    confirmed = race.median(race.incumbent)
    trials = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.datetime_complete)
    start = min(t.datetime_start for t in trials)

    def when(count: int, t: optuna.trial.FrozenTrial) -> str:
        return f"after {count} of {len(trials)} trials, {(t.datetime_complete - start).total_seconds():.0f} s of wall"

    within = next(
        ((n, t) for n, t in enumerate(trials, 1) if t.value is not None and t.value <= (1 + margin) * confirmed), None
    )
    winner = next((n, t) for n, t in enumerate(trials, 1) if t.number == race.incumbent)
    close = (
        f"its best within {margin:.0%} ({within[1].value:.1f} s, trial {within[1].number}) {when(*within)}"
        if within
        else f"no search trial within {margin:.0%}"
    )
    return f"confirmed best {confirmed:.1f} s (trial {race.incumbent}, trained {when(*winner)}); {close}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("studies", nargs="+", help="STORAGE:NAME")
    parser.add_argument("--margin", type=float, default=0.05, help="how close to the confirmed best [0.05]")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for target in args.studies:
        storage_url, _, name = target.rpartition(":")
        with opened(storage_url) as storage:
            print(f"{name}: {time_to_best(optuna.load_study(study_name=name, storage=storage), args.margin)}")


if __name__ == "__main__":
    main()
