"""Replay a finished study's learning curves through the saturation pruner, without training.

    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30
    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30 --min-epochs 2 --jitter 30
    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30 --behind-margin 1   # rule off

Takes a study run with `--pruner none` (whose trials ran to the target or their budget), feeds
each trial's curve, in trial order, to a pruner in an in-memory study, and prints how much of
the training time the pruner would have saved and which best time to target it would have
kept. The proposals are the unpruned study's: a real pruned study's sampler would propose
differently, so this ranks pruner settings rather than predicting a study.

In a study kept in the calibrated clock the replay is exact: the pruner sees the very seconds
it saw (or would have seen) in the study. For a study in measured seconds, decisions that
compare trials at equal training time can hinge on a fraction of a second, so `--jitter N`
replays N times with each trial's seconds scaled by a random factor within +-8 % (the spread
of epoch times measured on the 2-core machine) and prints the median and the range, and how
often the best was kept.

It also counts the would-be winners a setting stops: for every pair of trials that reached the
target, the slower one as the study's only finished trial (its leader), is the faster one
stopped? A bound on how often the rules that compare with the leader stop a trial that would
have won, over many more leaders than one study's history has.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics

import optuna
from optuna.trial import TrialState

from search.pruning.replay import replay, winners_stopped
from search.pruning.saturation import SaturationSettings
from search.records.study import study_record

# SaturationPruner's settings that can be replayed with other values; defaults are its own.
TUNABLE = (
    "chance_epochs",
    "chance_early_epochs",
    "chance_steps",
    "lookahead",
    "behind_from",
    "behind_margin",
    "min_peers",
    "min_epochs",
    "peer_quantile",
    "underfit_margin",
    "plateau_epochs",
    "reach_epochs",
    "underfit_waits_from",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/compare.db")
    parser.add_argument("study", help="a study run with --pruner none")
    defaults = {f.name: f.default for f in dataclasses.fields(SaturationSettings)}
    for name in TUNABLE:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=type(defaults[name]),
            default=defaults[name],
            help=f"SaturationPruner's {name} (default: %(default)s; reach-epochs 0 turns that rule off)",
        )
    parser.add_argument("--jitter", type=int, default=0, metavar="N", help="replays with timing noise (see above)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.storage)
    target = study_record(source).target
    settings = {name: getattr(args, name) for name in TUNABLE}
    complete = [t.value for t in source.trials if t.state == TrialState.COMPLETE]
    unpruned_best = min(complete) if complete else None
    result = replay(source, target, **settings)
    saved, best = result.saved, result.best
    print(f"training time saved: {100 * saved:.1f} %; outcomes: {dict(result.outcomes.most_common())}")
    print(
        f"best time to target kept: {best if best is None else round(best, 1)} s "
        f"(the unpruned study's: {unpruned_best if unpruned_best is None else round(unpruned_best, 1)} s)"
    )
    pairs, stopped = winners_stopped(source, target, **settings)
    print(
        f"would-be winners stopped: {len(stopped)} of {pairs} pairs (a faster trial against a slower leader)"
        + "".join(f"; trial {f} against {lead} ({rule})" for f, lead, rule in stopped[:8])
    )
    if args.jitter:
        rng = random.Random(1)
        runs = [replay(source, target, scale=lambda: rng.uniform(0.92, 1.08), **settings) for _ in range(args.jitter)]
        savings = [100 * r.saved for r in runs]
        kept = sum(
            1 for r in runs if r.best is not None and unpruned_best is not None and r.best <= 1.1 * unpruned_best
        )
        print(
            f"with +-8 % timing noise, {args.jitter} replays: saved median {statistics.median(savings):.1f} % "
            f"(range {min(savings):.1f}-{max(savings):.1f} %); best within 10 % of the unpruned study's "
            f"in {kept} of {args.jitter}"
        )


if __name__ == "__main__":
    main()
