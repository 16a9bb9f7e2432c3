"""The GPU issue's figures, side by side in one run: ms per optimizer step of the eager step, the
step replayed from a CUDA graph (lenet/steps.py) and a population's step per member
(lenet/population.py; replayed from graphs where the device policy graphs, as on a card) at
each batch size; a population's members against their solo
runs after 2 epochs; one graphed epoch under `torch.cuda.set_sync_debug_mode("error")`.

    python benchmarks/graph_population.py --data .gpudata/cifar10-images.tar.gz
    python benchmarks/graph_population.py --data ../shared/data/cifar10-images.tar.gz --device cpu --quick

Rounds are interleaved (each variant in turn, `--rounds` times) and medians printed; `--quick`
(a rehearsal on a machine without a card) measures few sizes and steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from lenet.config import TrainConfig
from lenet.data import load_dataset
from lenet.device import policy_for, warm_up
from lenet.population import PopulationRun
from lenet.step import EVAL_BATCH, Stepper
from lenet.steps import make_steps
from lenet.train import train


def _solo_step_seconds(data, policy, batch: int, graphs: bool, steps: int) -> float:
    stepper = Stepper(TrainConfig(batch_size=batch), data, policy)
    generator = policy.generator(0)
    n = len(data.train_x)
    run = make_steps(stepper, n, generator, graphs=graphs)
    run.begin_epoch(torch.randperm(n, device=policy.generator_device, generator=generator).to(data.device))
    run.step(0)  # a graph is captured at first use
    start = policy.clock()
    for _ in range(steps):
        run.step(0)
    return (policy.clock() - start) / steps


def _population_step_seconds(data, policy, batch: int, members: int, steps: int) -> float:
    configs = [TrainConfig(batch_size=batch, lr=0.01 * (1 + k % 5), seed=k) for k in range(members)]
    population = PopulationRun(configs, data, policy=policy)
    population._begin_epoch()  # the epoch's permutations and rates, as advance() sets them
    population._step(0)
    start = policy.clock()
    for _ in range(steps):
        population._step(0)
    return (policy.clock() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    policy = policy_for(device)
    data = load_dataset(args.data, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}")
    batches = [128] if args.quick else [32, 128, 512]
    sizes = [2] if args.quick else [8, 16, 32, 64]
    steps = 5 if args.quick else 200
    warm_up(policy, batches + [len(data.train_x) % b for b in batches], (EVAL_BATCH,), data.num_classes)
    times: dict[tuple, list[float]] = {}
    for _ in range(args.rounds):
        for b in batches:
            times.setdefault(("eager", b), []).append(_solo_step_seconds(data, policy, b, False, steps))
            if device.type == "cuda":
                times.setdefault(("graph", b), []).append(_solo_step_seconds(data, policy, b, True, steps))
            for k in sizes:
                per_member = _population_step_seconds(data, policy, b, k, steps) / k
                times.setdefault((f"population K={k}", b), []).append(per_member)
    print(f"{'step':>18} {'batch':>6} {'ms per (member-)step':>22} {'x eager':>8}")
    for (kind, b), values in times.items():
        ms = 1e3 * statistics.median(values)
        eager = 1e3 * statistics.median(times[("eager", b)])
        print(f"{kind:>18} {b:>6} {ms:>22.3f} {eager / ms:>7.1f}x")

    # Members against their solo runs: 2 epochs at batch 128, K = 8 (2 with --quick).
    k = 2 if args.quick else 8
    epochs = 1 if args.quick else 2
    configs = [
        TrainConfig(
            batch_size=128, lr=0.02 + 0.01 * i, momentum=0.85, step_size=1, gamma=0.7, max_epochs=epochs, seed=i
        )
        for i in range(k)
    ]
    started = time.perf_counter()
    population = PopulationRun(configs, data, policy=policy)
    curves: dict[int, list] = {i: [] for i in range(k)}
    while records := population.advance():
        for slot, record in records.items():
            curves[slot].append(record)
    population_seconds = time.perf_counter() - started
    started = time.perf_counter()
    solos = [train(c, data, policy=policy) for c in configs]
    solo_seconds = time.perf_counter() - started
    print(
        f"\n{k} members, {epochs} epochs at batch 128: population {population_seconds:.1f} s, "
        f"solo runs {solo_seconds:.1f} s"
    )
    for i, solo in enumerate(solos):
        gaps = [abs(a.val_accuracy - b.val_accuracy) for a, b in zip(curves[i], solo.history)]
        print(
            f"  member {i}: validation accuracy {curves[i][-1].val_accuracy:.4f} against solo "
            f"{solo.history[-1].val_accuracy:.4f}; largest gap on the curve {max(gaps):.4f}"
        )

    if device.type == "cuda":
        stepper = Stepper(dataclasses.replace(configs[0], max_epochs=1), data, policy)
        generator = policy.generator(0)
        n = len(data.train_x)
        run = make_steps(stepper, n, generator, graphs=True)
        per_epoch = -(-n // 128)
        for _ in range(2):  # the first epoch captures both kinds of step
            run.begin_epoch(torch.randperm(n, device=device, generator=generator))
            if _ == 1:
                torch.cuda.set_sync_debug_mode("error")
            try:
                for i in range(per_epoch):
                    run.step(i)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        print("\none graphed epoch under set_sync_debug_mode('error'): no synchronisation")


if __name__ == "__main__":
    main()
