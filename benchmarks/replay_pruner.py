"""Replay a finished study's learning curves through the saturation pruner, without training.

    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30
    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30 --min-epochs 2 --jitter 30
    python benchmarks/replay_pruner.py --storage sqlite:///studies/compare.db unpruned-30 --behind-margin 1   # rule off
    python benchmarks/replay_pruner.py --storage sqlite:///studies/q4.db q4-none-30 --evals-per-epoch 2 --orders 30

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

`--orders N` replays the trials in N shuffled orders and prints how often the best was kept: a
rule that judges against few peers or an early leader decides differently when other trials
came first. `--evals-per-epoch K` replays a study evaluated more often as if it had been
evaluated K times an epoch (every k-th evaluation: training does not depend on evaluation).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
from collections import Counter

import optuna

from search.pruning.replay import in_orders, records, replay, winners_stopped
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
    parser.add_argument("--orders", type=int, default=0, metavar="N", help="replays in shuffled orders (see above)")
    parser.add_argument(
        "--evals-per-epoch", type=int, default=None, metavar="K", help="thin the curves to K evaluations an epoch"
    )
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.storage)
    target = study_record(source).target
    settings = {name: getattr(args, name) for name in TUNABLE}
    found = records(source, args.evals_per_epoch)
    complete = [r.clock_seconds_to_target for r in found if r.clock_seconds_to_target is not None]
    unpruned_best = min(complete) if complete else None
    result = replay(found, target, **settings)
    saved, best = result.saved, result.best
    print(f"training time saved: {100 * saved:.1f} %; outcomes: {dict(result.outcomes.most_common())}")
    print(
        f"best time to target kept: {best if best is None else round(best, 1)} s "
        f"(the unpruned study's: {unpruned_best if unpruned_best is None else round(unpruned_best, 1)} s)"
    )
    pairs, stopped = winners_stopped(found, target, **settings)
    print(
        f"would-be winners stopped: {len(stopped)} of {pairs} pairs (a faster trial against a slower leader)"
        + "".join(f"; trial {f} against {lead} ({rule})" for f, lead, rule in stopped[:8])
    )
    if args.jitter:
        rng = random.Random(1)
        runs = [replay(found, target, scale=lambda: rng.uniform(0.92, 1.08), **settings) for _ in range(args.jitter)]
        savings = [100 * r.saved for r in runs]
        kept = sum(
            1 for r in runs if r.best is not None and unpruned_best is not None and r.best <= 1.1 * unpruned_best
        )
        print(
            f"with +-8 % timing noise, {args.jitter} replays: saved median {statistics.median(savings):.1f} % "
            f"(range {min(savings):.1f}-{max(savings):.1f} %); best within 10 % of the unpruned study's "
            f"in {kept} of {args.jitter}"
        )
    if args.orders:
        shuffled = in_orders(found, target, args.orders, **settings)
        saved = [100 * x for x in shuffled.saved]
        instead = Counter(None if b is None else round(b, 1) for b in shuffled.lost)
        print(
            f"in {shuffled.orders} shuffled orders: best kept in {shuffled.kept}, saved median "
            f"{100 * shuffled.median_saved:.1f} % (range {min(saved):.1f}-{max(saved):.1f} %)"
            + "".join(
                f"; {instead[b]} kept {'nothing' if b is None else f'{b} s'} instead"
                for b in sorted(instead, key=lambda b: (b is None, b or 0.0))
            )
        )


if __name__ == "__main__":
    main()
