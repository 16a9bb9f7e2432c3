"""How well TPE's view ranks the trials the pruner stopped: by pace (search/sampling/paced.py)
against Optuna's own ranking of pruned trials, checked against their true times to target.

    python benchmarks/sampler_food.py --storage sqlite:///tests/data/unpruned-30-s10.db unpruned-30-s10

Takes a study run with `--pruner none`, whose trials all ran to the target or their budget, so
each trial's true time to target (or that it never got there) is known. Replays its curves in
trial order through the default pruner (search/pruning/replay.py) and, for every trial it stops
as slow, scores it as the sampler would at the end of the study: by its pace against the
replay's leader, and by Optuna's ranking of pruned trials (the last step reported, an epoch,
then the validation error there: optuna/samplers/_tpe/sampler.py, `_get_pruned_trial_score`).
Prints each stopped trial's scores and true time, the rank correlation of each score with the
true times (Spearman; trials that never reached the target share the last rank), and the true
times of the three each ranks first (TPE's "good" group in a 30-trial study is three trials).
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence

import optuna
from optuna.trial import TrialState, create_trial

from search.pruning.curves import curve_points
from search.pruning.replay import feed, records
from search.pruning.saturation import SLOW_RULES, SaturationPruner
from search.records.keys import CURVE, OUTCOME, POINT_EPOCH, POINT_VAL_ACCURACY
from search.records.study import study_record
from search.sampling.paced import paced_value
from search.study.queries import best_completed


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 0, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    return statistics.correlation(_ranks(x), _ranks(y))


def optuna_key(curve: Sequence[dict]) -> float:
    """Optuna's ranking of a pruned trial as one number: its last whole epoch (the objective
    reports at `int(epoch)`, the first report of a step kept), then its validation error there."""
    steps: dict[int, float] = {}
    for point in curve:
        steps.setdefault(int(point[POINT_EPOCH]), 1 - point[POINT_VAL_ACCURACY])
    last = max(steps)
    return -last * 10 + steps[last]  # errors lie in [0, 1]: the step decides first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", required=True)
    parser.add_argument("study", help="a study run with --pruner none")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=args.study, storage=args.storage)
    target = study_record(source).target
    pruner = SaturationPruner(target)
    study = optuna.create_study(direction="minimize", pruner=pruner)
    stopped = []  # (number, rule, curve so far, true seconds to target or inf)
    reached = []  # (number, seconds to target) of the trials the replay let reach the target
    for past in records(source):
        outcome, at = feed(study, pruner, past, past.curve, target)
        number = study.trials[-1].number
        if outcome == "reached":
            study.tell(number, past.clock_seconds_to_target)
            reached.append((past.number, past.clock_seconds_to_target))
            continue
        study.tell(number, state=TrialState.PRUNED)
        if outcome in SLOW_RULES:
            stopped.append((past.number, outcome, past.curve[:at], past.clock_seconds_to_target or math.inf))
    leader = best_completed(study.trials)
    if leader is None or len(stopped) < 3:
        raise SystemExit(f"{args.study}: the replay completed no trial or stopped fewer than 3 as slow")
    rows = []
    for number, rule, curve, true in stopped:
        frozen = create_trial(state=TrialState.PRUNED, user_attrs={CURVE: list(curve), OUTCOME: rule})
        pace = paced_value(frozen, leader.value, curve_points(leader))
        rows.append((number, rule, true, curve[-1], math.inf if pace is None else pace, optuna_key(curve)))
    print(
        f"{args.study}: {len(rows)} trials stopped as slow; the replay's leader, trial {leader.number}, "
        f"{leader.value:.1f} s (trial numbers are the source study's)"
    )
    print("trial  rule          true time   stopped at           pace      Optuna's step, error")
    for number, rule, true, last, pace, key in sorted(rows, key=lambda r: r[4]):
        step = -math.floor(key / 10)
        print(
            f"{number:5d}  {rule:12s}  {true:7.1f} s   {last[POINT_EPOCH]:5.2f} ep {last[POINT_VAL_ACCURACY]:.3f}"
            f"   {pace:7.1f} s   {step:3d}, {key + 10 * step:.3f}"
        )
    truth = [min(r[2], 1e9) for r in rows]
    for label, column in (("pace", 4), ("Optuna's", 5)):
        scores = [min(r[column], 1e9) for r in rows]
        top = sorted(rows, key=lambda r: r[column])[:3]
        print(
            f"{label} ranking: Spearman {spearman(scores, truth):.2f} with the true times; its first three "
            + ", ".join(f"trial {r[0]} ({r[2]:.1f} s)" for r in top)
        )
    against_completed(rows, reached)


def against_completed(rows: Sequence[tuple], reached: Sequence[tuple[int, float]]) -> None:
    """Stopped trials against the completed ones: how often a pace below a completed trial's
    time means a truly faster trial, and the good group each ordering gives TPE at the end."""
    pairs = [(r[4] < seconds, r[2] < seconds) for r in rows for _, seconds in reached]
    ahead = [truly for placed, truly in pairs if placed]
    optimism = sorted(r[2] / r[4] for r in rows if math.isfinite(r[2]) and math.isfinite(r[4]))
    print(
        f"against the {len(reached)} completed: paced ahead of one in {len(ahead)} of {len(pairs)} pairs, "
        f"truly faster in {sum(ahead)}; true time over pace, median {statistics.median(optimism):.2f} "
        f"({optimism[0]:.2f}-{optimism[-1]:.2f}) over the {len(optimism)} stopped trials that reached"
    )
    n_below = min(math.ceil(0.1 * (len(rows) + len(reached))), 25)  # TPE's default_gamma
    completed = [(seconds, number, seconds) for number, seconds in reached]
    paced = [(r[4], r[0], r[2]) for r in rows]
    for label, order in (
        ("interleaved by pace", sorted(completed + paced)),
        ("completed first", sorted(completed) + sorted(paced)),
    ):
        good = order[:n_below]
        print(f"TPE's good group ({n_below}), {label}: " + ", ".join(f"trial {n} ({t:.1f} s)" for _, n, t in good))


if __name__ == "__main__":
    main()
