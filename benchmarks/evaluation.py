"""Seconds per validation evaluation (lenet.step.evaluate on the validation split) of the
device policy's model against the same model pooling with max_pool2d's kernel, and the step
clock's calibration with the partial batches timed in 3 rounds against all 7; each pair
interleaved over rounds (median), with the ratio.

    python benchmarks/evaluation.py --data ../shared/data/cifar10-images.tar.gz
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

from lenet.clock import calibrate_clock
from lenet.config import TrainConfig
from lenet.data import load_dataset
from lenet.device import policy_for, resolve_device, set_threads
from lenet.step import build_model, evaluate
from search.space import default_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--clock-rounds", type=int, default=3, help="calibrations of each kind")
    args = parser.parse_args()

    device = resolve_device(args.device)
    threads = set_threads(args.threads) if device.type == "cpu" else None
    data = load_dataset(args.data, device)
    policy = policy_for(device)
    models = {
        "policy": build_model(TrainConfig(seed=0), policy),
        "max_pool2d": build_model(TrainConfig(seed=0), dataclasses.replace(policy, pool_by_pairs=False)),
    }
    results = {name: evaluate(m, data.val_x, data.val_y, policy=policy) for name, m in models.items()}
    assert results["policy"] == results["max_pool2d"], results  # the same loss and accuracy
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            start = policy.clock()
            evaluate(model, data.val_x, data.val_y, policy=policy)
            seconds[name].append(policy.clock() - start)
    print(f"{device}, {threads or '-'} threads; {len(data.val_x)} validation images, medians of {args.rounds} rounds")
    med = {name: statistics.median(s) for name, s in seconds.items()}
    for name, s in seconds.items():
        print(
            f"  evaluation, {name:>10}: {med[name] * 1000:6.1f} ms (min {min(s) * 1000:.1f}, max {max(s) * 1000:.1f})"
        )
    print(f"  ratio policy / max_pool2d: {med['policy'] / med['max_pool2d']:.2f}")

    batch_sizes = list(default_params()["batch_size"].choices)
    calibrations: dict[int, list[float]] = {3: [], 7: []}
    for _ in range(args.clock_rounds):
        for partial_rounds in calibrations:
            start = time.perf_counter()
            calibrate_clock(data, batch_sizes, threads=threads, partial_rounds=partial_rounds)
            calibrations[partial_rounds].append(time.perf_counter() - start)
    for partial_rounds, s in calibrations.items():
        print(f"  clock calibration, partial batches in {partial_rounds} rounds: {statistics.median(s):.1f} s {s}")


if __name__ == "__main__":
    main()
