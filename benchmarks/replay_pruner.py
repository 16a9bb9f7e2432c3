"""Replay a finished study's learning curves through the saturation pruner, without training.

    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30
    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30 --peer-quantile 0.75

Takes a study run with `--pruner none` (whose trials ran to the target or their budget), feeds
each trial's curve, in trial order, to a pruner in an in-memory study, and prints how much of
the training time the pruner would have saved and which best time to target it would have
kept. The proposals are the unpruned study's: a real pruned study's sampler would propose
differently, so this ranks pruner settings rather than predicting a study.
"""

from __future__ import annotations

import argparse
from collections import Counter

import optuna
from optuna.trial import TrialState

from search.pruner import CURVE_ATTR, SaturationPruner


def replay(source: optuna.Study, target: float, **settings) -> tuple[float, float | None, Counter]:
    pruner = SaturationPruner(target, **settings)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    spent, best, outcomes = 0.0, None, Counter()
    trials = sorted((t for t in source.trials if t.user_attrs.get(CURVE_ATTR)), key=lambda t: t.number)
    for past in trials:
        curve = past.user_attrs[CURVE_ATTR]
        trial = study.ask()
        outcome, at = "budget", len(curve)
        for i in range(1, len(curve) + 1):
            trial.set_user_attr(CURVE_ATTR, curve[:i])
            trial.report(1 - curve[i - 1]["val_accuracy"], i)
            if curve[i - 1]["val_accuracy"] >= target:
                outcome, at = "reached", i
                break
            if trial.should_prune():
                outcome, at = pruner.reasons[trial.number].rule, i
                break
        seconds = curve[at - 1]["train_seconds"]
        spent += seconds
        outcomes[outcome] += 1
        if outcome == "reached":
            study.tell(trial, seconds)
            best = seconds if best is None else min(best, seconds)
        else:
            study.tell(trial, state=TrialState.PRUNED)
    total = sum(t.user_attrs.get("train_seconds", 0.0) for t in trials)
    return 1 - spent / total, best, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/compare.db")
    parser.add_argument("study", help="a study run with --pruner none")
    parser.add_argument("--min-peers", type=int, default=4)
    parser.add_argument("--peer-quantile", type=float, default=0.5)
    parser.add_argument("--underfit-margin", type=float, default=0.01)
    parser.add_argument("--plateau-evals", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.storage)
    complete = [t.value for t in source.trials if t.state == TrialState.COMPLETE]
    saved, best, outcomes = replay(
        source, source.user_attrs["target"], min_peers=args.min_peers, peer_quantile=args.peer_quantile,
        underfit_margin=args.underfit_margin, plateau_evals=args.plateau_evals,
    )  # fmt: skip
    print(f"training time saved: {100 * saved:.0f} %; outcomes: {dict(outcomes.most_common())}")
    unpruned_best = min(complete) if complete else None
    print(f"best time to target kept: {best if best is None else round(best, 1)} s "
          f"(the unpruned study's: {unpruned_best if unpruned_best is None else round(unpruned_best, 1)} s)")  # fmt: skip


if __name__ == "__main__":
    main()
