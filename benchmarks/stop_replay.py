"""What a patience stop would have done to a finished serial study: stop the search once P trials
in a row have not improved the best time to target by 1 % (`optimize --patience P`,
search/run/stopping.py).

    python benchmarks/stop_replay.py --storage sqlite:///studies/lenet.db lenet5-cifar10 --patience 20 30 40

For each P: the trial after which it would have stopped, the training in the study's clock it
would have saved, and the best it would have kept against the study's (the confirmation race,
which runs after the search, is left out). Trials are taken in number order, the order a
1-lane study finishes them in.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from search.records.trial import TrialRecord
from search.run.stopping import patience_stop
from search.study.queries import FINISHED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/lenet.db")
    parser.add_argument("study")
    parser.add_argument("--patience", type=int, nargs="+", default=[20, 30, 40])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    trials = sorted(study.get_trials(deepcopy=False, states=FINISHED), key=lambda t: t.number)
    seconds = [TrialRecord.of(t).clock_seconds for t in trials]
    total = sum(seconds)
    final = min((t.value for t in trials if t.state == TrialState.COMPLETE), default=None)
    shown = "none" if final is None else f"{final:.1f} s"
    print(f"{args.study}: {len(trials)} trials, {total:.0f} s of training in the study's clock, best {shown}")
    for patience in args.patience:
        # The schedule's own rule (search/run/stopping.py), judged before each trial as a 1-lane study does.
        stop = next((s for i in range(len(trials)) if (s := patience_stop(trials[:i], patience))), None)
        if stop is None:
            print(f"patience {patience}: never stops")
            continue
        spent = sum(seconds[: stop.ended])
        print(
            f"patience {patience}: stops after {stop.ended} trials; training {spent:.0f} s "
            f"({100 * (1 - spent / total):.0f} % saved); best kept {stop.best_seconds:.1f} s against {final:.1f} s "
            f"({100 * (stop.best_seconds / final - 1):+.1f} %)"
        )


if __name__ == "__main__":
    main()
