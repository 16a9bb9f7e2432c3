"""Time to target of stored trials' schedules, trained again on the same fresh seeds and priced
in one study's clock, at each number of evaluations per epoch given: winners of different
studies (or evaluation settings) measured alike.

    python benchmarks/remeasure.py --data ../shared/data/cifar10-images.tar.gz \\
        --clock sqlite:///studies/lenet.db:lenet5-cifar10 \\
        sqlite:///studies/lenet.db:lenet5-cifar10:71 sqlite:///studies/q4.db:q4-100:52 --evals 2,4
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import optuna
import torch

from lenet.data import load_dataset
from lenet.device import set_threads
from lenet.train import TrainingRun
from search.clock.pricing import time_to_target
from search.records.study import study_record
from search.records.trial import TrialRecord


def _study(text: str) -> tuple[optuna.Study, list[str]]:
    """URL:STUDY[:REST...] (the URL may hold colons: the study name is the first part after it)."""
    scheme, _, rest = text.partition(":///")
    path, *names = rest.split(":")
    return optuna.load_study(study_name=names[0], storage=f"{scheme}:///{path}"), names[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument(
        "--clock", required=True, metavar="URL:STUDY", help="the study whose clock and target price the runs"
    )
    parser.add_argument("trials", nargs="+", metavar="URL:STUDY:TRIAL")
    parser.add_argument("--evals", default="2,4", help="evaluations per epoch to measure at")
    parser.add_argument("--seeds", default="1000,1001,1002,1003")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    threads = set_threads(args.threads)
    priced_by = study_record(_study(args.clock)[0])
    clock, target = priced_by.step_clock(), priced_by.target
    data = load_dataset(args.data, torch.device("cpu"))
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"target {target:.4f}, the clock of {args.clock}; cpu, {threads} threads; seeds {seeds}")
    for text in args.trials:
        study, (number,) = _study(text)
        config = TrialRecord.of(study.trials[int(number)]).config
        for per_epoch in (int(e) for e in args.evals.split(",")):
            times: list[float | None] = []
            for seed in seeds:
                run = TrainingRun(
                    dataclasses.replace(config, seed=seed, evals_per_epoch=per_epoch), data, threads=threads
                )
                while (evaluation := run.advance()) is not None and evaluation.val_accuracy < target:
                    pass
                reached = time_to_target(run.history, target, run.config, clock)
                times.append(reached.clock_seconds if reached else None)
            done = [t for t in times if t is not None]
            median = f"{statistics.median(done):.2f} s" if len(done) == len(times) else "- (not every seed reached it)"
            shown = ", ".join("-" if t is None else f"{t:.2f}" for t in times)
            print(f"  {text}, {per_epoch} evaluations per epoch: {shown}; median {median}")


if __name__ == "__main__":
    main()
