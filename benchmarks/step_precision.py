"""Seconds per optimizer step of the engine's own step (lenet.train.Stepper) under the device's
policy against the same step in fp32, per batch size, interleaved over rounds (median).

It shows whether the policy's bf16 autocast pays for LeNet-5 on a card, and how far a step is
from its launch-bound floor (a step whose time hardly grows with the batch is launch-bound).

    python benchmarks/step_precision.py --data ../shared/data/cifar10-images.tar.gz --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

from lenet.clock import calibrate_clock
from lenet.data import load_dataset
from lenet.device import policy_for, resolve_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-sizes", default="32,128,512,2048")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    device = resolve_device(args.device)
    data = load_dataset(args.data, device)
    policy = policy_for(device)
    fp32 = dataclasses.replace(policy, autocast_dtype=None)
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    # The step clock's calibration is this measurement: warm-up, blocks, interleaved rounds, medians.
    # Twice each, alternating, the faster kept: the first calibration of a process can pay for
    # what warm-up left (allocator growth, clocks ramping up) and should not count against it.
    runs = {"policy": [], "fp32": []}
    for _ in range(2):
        for name, p in (("policy", policy), ("fp32", fp32)):
            runs[name].append(calibrate_clock(data, sizes, policy=p, rounds=args.rounds, block_seconds=0.1))
    clocks = {name: min(cs, key=lambda c: sum(x.full for x in c.costs.values())) for name, cs in runs.items()}
    print(f"device {device} ({clocks['policy'].hardware.get('name', '?')}), policy autocast {policy.autocast_dtype}")
    print(
        f"{'batch':>6} {'policy ms/step':>15} {'fp32 ms/step':>13} {'fp32/policy':>11} "
        f"{'policy us/image':>16} {'epoch s (policy)':>17}"
    )
    ratios = []
    for b in sizes:
        p, f = clocks["policy"].cost(b, False), clocks["fp32"].cost(b, False)
        ratios.append(f.full / p.full)
        epoch = clocks["policy"].seconds_for(b, False, -(-len(data.train_x) // b))
        print(
            f"{b:>6} {p.full * 1e3:>15.3f} {f.full * 1e3:>13.3f} {f.full / p.full:>11.2f} "
            f"{p.full / b * 1e6:>16.2f} {epoch:>17.2f}"
        )
    print(f"median fp32/policy: {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
