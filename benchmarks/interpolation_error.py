"""How well is time to target resolved between evaluations? Dense evaluations as the reference.

    python benchmarks/interpolation_error.py --storage sqlite:///studies/trust.db unpruned-30 \
        --data ../shared/data/cifar10-images.tar.gz --top 5 --dense 8

Takes the fastest completed schedules of a study, trains each again (same seed) evaluating
`--dense` times per epoch until the target, and compares, in the study's clock:

- the reference: the crossing interpolated between the dense evaluations that bracket it;
- "at evaluation": the first of the study's own evaluations (every dense/evals_per_epoch-th
  dense one: evaluation changes nothing in training, so they are exactly the study's) at or
  above the target, as time to target was read before;
- "interpolated": the crossing interpolated between the study's own evaluations, as it is now.

Prints each schedule's three times and the median and largest error of the two estimates,
relative to the reference.
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import optuna

from lenet.curve import first_crossing
from lenet.data import load_dataset
from lenet.train import train
from search.clock.pricing import clock_seconds
from search.records.study import step_clock, study_record
from search.records.trial import TrialRecord
from search.study.queries import completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", default="sqlite:///studies/trust.db")
    parser.add_argument("study")
    parser.add_argument("--data", required=True)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--dense", type=int, default=8, help="evaluations per epoch of the reference")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=args.study, storage=args.storage)
    record = study_record(study)
    clock = step_clock(record)
    target = record.target
    data = load_dataset(args.data, "cpu")
    errors_at, errors_interp = [], []
    print(f"{'trial':>5} {'reference s':>12} {'at eval s':>10} {'interp s':>9}  schedule")
    for trial in completed(study.get_trials(deepcopy=False))[: args.top]:
        config = TrialRecord.of(trial).config
        sparse_every = args.dense // config.evals_per_epoch
        dense = replace(config, evals_per_epoch=args.dense)

        def seconds(r, c=config):
            return clock_seconds(clock, c, r)

        history = train(dense, data, on_eval=lambda r: r.val_accuracy >= target).history
        sparse = history[sparse_every - 1 :: sparse_every]
        reference = first_crossing(history, target).interpolate(seconds)
        sparse_cross = first_crossing(sparse, target)
        if sparse_cross is None:  # the dense run stopped before the study's next evaluation
            more = train(config, data, on_eval=lambda r: r.val_accuracy >= target).history
            sparse_cross = first_crossing(more, target)
        at_eval = seconds(sparse_cross.after)
        interp = sparse_cross.interpolate(seconds)
        errors_at.append(abs(at_eval - reference) / reference)
        errors_interp.append(abs(interp - reference) / reference)
        print(
            f"{trial.number:>5} {reference:>12.2f} {at_eval:>10.2f} {interp:>9.2f}  lr {config.lr:.3g} bs "
            f"{config.batch_size} StepLR {config.step_size} x {config.gamma:.2f} mom {config.momentum:.2f}"
        )
    print(f"error against the reference ({args.dense} evaluations per epoch), {len(errors_at)} schedules:")
    print(f"  at evaluation: median {100 * statistics.median(errors_at):.1f} %, largest {100 * max(errors_at):.1f} %")
    print(
        f"  interpolated:  median {100 * statistics.median(errors_interp):.1f} %, largest "
        f"{100 * max(errors_interp):.1f} %"
    )


if __name__ == "__main__":
    main()
