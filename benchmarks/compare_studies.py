"""Compare two studies of the same search, e.g. with the default pruner and with --pruner none.

    python benchmarks/compare_studies.py --storage sqlite:///studies/compare.db pruned-30 unpruned-30

Prints, per study: trials by outcome, total training seconds and images spent, the best time
to target and its schedule, and the confirmed winner where the study raced its candidates; then
the training time the first study saved against the second, and both bests compared. A single
best is one seed's draw; two confirmed winners, raced on the same fresh seeds (the same study
seed gives the same confirmation seeds), compare the schedules themselves.
"""

from __future__ import annotations

import argparse
from collections import Counter

import optuna

from search.confirm.race import CandidateSummary, confirmation_of
from search.records.trial import TrialRecord
from search.study.queries import FINISHED, best_completed
from search.views.confirmation import times_text


def summarise(study: optuna.Study) -> dict:
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    best = best_completed(trials)
    records = [TrialRecord.of(t) for t in trials]
    return {
        "trials": len(records),
        "outcomes": Counter(r.outcome or "?" for r in records),
        "train_by_outcome": _by_outcome(records),
        "train_seconds": sum(r.clock_seconds for r in records),
        "measured_seconds": sum(r.measured_seconds for r in records),
        "images": sum(r.images for r in records),
        "best": TrialRecord.of(best) if best else None,
        "confirmed": _confirmed_winner(study),
    }


def _by_outcome(records: list[TrialRecord]) -> Counter:
    seconds = Counter()
    for r in records:
        seconds[r.outcome or "?"] += r.clock_seconds
    return seconds


def _confirmed_winner(study: optuna.Study) -> tuple[CandidateSummary, list[int]] | None:
    race = confirmation_of(study)
    if race is None or not race.done or race.incumbent is None:
        return None
    return race.summary(race.incumbent), race.seeds


def describe(name: str, s: dict) -> None:
    print(f"{name}: {s['trials']} finished trials ({', '.join(f'{k} {v}' for k, v in s['outcomes'].most_common())})")
    print(
        f"  training spent: {s['train_seconds']:.0f} s in the study's clock ({s['measured_seconds']:.0f} s measured), "
        f"{s['images'] / 1e6:.1f} M images"
    )
    print("  training by outcome: " + ", ".join(f"{k} {v:.0f} s" for k, v in s["train_by_outcome"].most_common()))
    best = s["best"]
    if best is None:
        print("  no trial reached the target")
        return
    c = best.config
    print(
        f"  best: trial {best.number}, {best.value:.1f} s to target ({best.epochs_to_target:g} epochs, "
        f"{best.images_to_target / 1e6:.2f} M images)"
    )
    print(
        f"        lr {c.lr:.4g}, batch {c.batch_size}, StepLR {c.step_size} x {c.gamma:.3g}, momentum {c.momentum:.3g}"
    )
    if s["confirmed"] is not None:
        winner, seeds = s["confirmed"]
        print(
            f"  confirmed winner on seeds {seeds[0]}-{seeds[-1]}: trial {winner.trial}, median "
            f"{'' if winner.median_exact else 'at least '}{winner.median:.1f} s ({times_text(winner)})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/compare.db")
    parser.add_argument("study", help="the study to judge (e.g. with the default pruner)")
    parser.add_argument("baseline", help="the study to compare with (e.g. --pruner none)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    a = summarise(optuna.load_study(study_name=args.study, storage=args.storage))
    b = summarise(optuna.load_study(study_name=args.baseline, storage=args.storage))
    describe(args.study, a)
    describe(args.baseline, b)
    saved = 1 - a["train_seconds"] / b["train_seconds"]
    print(
        f"training time saved by {args.study}: {100 * saved:.0f} % "
        f"({a['train_seconds']:.0f} s against {b['train_seconds']:.0f} s; "
        f"images: {100 * (1 - a['images'] / b['images']):.0f} %)"
    )
    if a["best"] and b["best"]:
        print(
            f"best time to target: {a['best'].value:.1f} s against {b['best'].value:.1f} s "
            f"({100 * (a['best'].value / b['best'].value - 1):+.0f} %)"
        )
    if a["confirmed"] and b["confirmed"]:
        (wa, seeds_a), (wb, seeds_b) = a["confirmed"], b["confirmed"]
        same = "the same seeds" if seeds_a == seeds_b else "different seeds"
        print(
            f"confirmed medians ({same}): {wa.median:.1f} s against {wb.median:.1f} s "
            f"({100 * (wa.median / wb.median - 1):+.0f} %)"
        )


if __name__ == "__main__":
    main()
