"""What a patience stop would have done to a finished serial study: stop the search once P trials
in a row have not improved the best time to target by at least `--min-gain` (Ray Tune's
ExperimentPlateauStopper and Optuna's BestValueStagnationEvaluator work alike).

    python benchmarks/stop_replay.py --storage sqlite:///studies/lenet.db lenet5-cifar10 --patience 20 30 40

For each P: the trial after which it would have stopped, the training in the study's clock it
would have saved, and the best it would have kept against the study's (the confirmation race,
which runs after the search, is left out). Trials are taken in number order, the order a
1-lane study finishes them in.
"""

from __future__ import annotations

import argparse

import optuna

from search.records.trial import TrialRecord
from search.study.queries import FINISHED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/lenet.db")
    parser.add_argument("study")
    parser.add_argument("--patience", type=int, nargs="+", default=[20, 30, 40])
    parser.add_argument("--min-gain", type=float, default=0.01, help="relative improvement that counts (0.01: 1 %%)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    records = sorted(
        (TrialRecord.of(t) for t in study.get_trials(deepcopy=False, states=FINISHED)), key=lambda r: r.number
    )
    total = sum(r.clock_seconds for r in records)
    final = min((r.value for r in records if r.value is not None), default=None)
    shown = "none" if final is None else f"{final:.1f} s"
    print(f"{args.study}: {len(records)} trials, {total:.0f} s of training in the study's clock, best {shown}")
    for patience in args.patience:
        best, improved_at, stop = None, 0, None
        for i, r in enumerate(records):
            if r.value is not None and (best is None or r.value < best * (1 - args.min_gain)):
                improved_at = i
            if r.value is not None:
                best = r.value if best is None else min(best, r.value)
            if i - improved_at >= patience:
                stop = i
                break
        if stop is None:
            print(f"patience {patience}: never stops")
            continue
        spent = sum(r.clock_seconds for r in records[: stop + 1])
        print(
            f"patience {patience}: stops after trial {records[stop].number}; training {spent:.0f} s "
            f"({100 * (1 - spent / total):.0f} % saved); best kept {best:.1f} s against {final:.1f} s "
            f"({100 * (best / final - 1):+.1f} %)"
        )


if __name__ == "__main__":
    main()
