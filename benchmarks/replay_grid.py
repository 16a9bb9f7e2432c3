"""Replay several studies through the saturation pruner under a grid of settings, one table.

    python benchmarks/replay_grid.py --storage sqlite:///studies/s23.db unpruned-30-s10 unpruned-30-s11 \\
        --set behind_margin=1,0.03,0.02 --set behind_from=0.5,0.4 --set min_epochs=1,0.5

Each row is one combination of the `--set` values (the other settings at their defaults); each
study gets the training saved, the best time to target kept (`!` where the replay lost the
study's best) and the would-be winners stopped (replay_pruner.py explains both).
"""

from __future__ import annotations

import argparse
import itertools

import optuna
from optuna.trial import TrialState
from replay_pruner import TUNABLE

from search.pruning.replay import replay, winners_stopped
from search.records.study import study_record


def _values(text: str) -> tuple[str, list[float]]:
    name, _, values = text.partition("=")
    if name not in TUNABLE or not values:
        raise SystemExit(f"--set takes NAME=V1,V2,... with NAME one of {', '.join(TUNABLE)}; got {text!r}")
    return name, [int(v) if name in ("min_peers", "chance_steps") else float(v) for v in values.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/compare.db")
    parser.add_argument("studies", nargs="+")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    grid = dict(_values(t) for t in args.set)
    sources = [optuna.load_study(study_name=name, storage=args.storage) for name in args.studies]
    bests = [min((t.value for t in s.trials if t.state == TrialState.COMPLETE), default=None) for s in sources]
    print(" | ".join(["setting", *(f"{n} (best {b:.1f} s)" for n, b in zip(args.studies, bests))]))
    for combination in itertools.product(*grid.values()):
        settings = dict(zip(grid, combination))
        cells = []
        for source, unpruned_best in zip(sources, bests):
            target = study_record(source).target
            result = replay(source, target, **settings)
            saved, best = result.saved, result.best
            pairs, stopped = winners_stopped(source, target, **settings)
            lost = "!" if best is None or unpruned_best is None or best > unpruned_best + 1e-9 else ""
            cells.append(
                f"{100 * saved:.1f} %, {best if best is None else round(best, 1)} s{lost}, {len(stopped)}/{pairs}"
            )
        print(" | ".join([", ".join(f"{k}={v:g}" for k, v in settings.items()) or "defaults", *cells]))


if __name__ == "__main__":
    main()
