"""Measuring a study's step clock as its lanes will train: with `processes` processes measuring
side by side (each lane's steps cost what they cost while the other lanes train too), and
choosing the lanes of a new CPU study by what the machine measures.

Two one-thread processes on two cores trained 10-33 % more images a second than one process
with two threads (docs/scaling.md, "Lanes"), but that is one machine's figure: a new study with
no lanes asked for measures both layouts and takes lanes only where they are faster.
"""

from __future__ import annotations

import multiprocessing
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lenet.clock import StepClock, StepCost, calibrate_clock
from lenet.config import option
from lenet.data import DEFAULT_VAL_SIZE, DeviceData, load_dataset
from lenet.device import cpu_count, resolve_device
from lenet.errors import blame
from search.records.files import write_json

# Lanes are taken when they train at least this much faster than one process with every core:
# below it, the schedule's waiting and the extra processes' start would eat the gain.
LANES_GAIN = 1.05


def measure_clock(
    data: DeviceData,
    data_path: str | None,
    batch_sizes: Sequence[int],
    augments: Sequence[bool],
    *,
    threads: int | None,
    processes: int = 1,
    budget_seconds: float = 30.0,
) -> StepClock:
    """The step clock of `processes` processes with `threads` threads each, measured side by side
    (the median of their figures); one process measures alone."""
    if processes == 1:
        return calibrate_clock(data, batch_sizes, augments, threads=threads, budget_seconds=budget_seconds)
    ctx = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state
    barrier, results = ctx.Barrier(processes, timeout=300), ctx.Queue()  # a helper that died breaks it
    args = (data_path, str(data.device), data.val_size, list(batch_sizes), list(augments), threads, budget_seconds)
    helpers = [ctx.Process(target=_measure_in_helper, args=(*args, barrier, results)) for _ in range(processes - 1)]
    for helper in helpers:
        helper.start()
    try:
        mine = calibrate_clock(
            data, batch_sizes, augments, threads=threads, budget_seconds=budget_seconds, ready=barrier.wait
        )
        clocks = [mine] + [StepClock.from_dict(results.get(timeout=600)) for _ in helpers]
    finally:
        for helper in helpers:
            helper.join(timeout=60)
            if helper.is_alive():
                helper.kill()
    return combined(clocks)


def _measure_in_helper(
    data_path: str | None,
    device: str,
    val_size: int,
    batch_sizes: list[int],
    augments: list[bool],
    threads: int | None,
    budget_seconds: float,
    barrier: Any,
    results: Any,
) -> None:
    data = load_dataset(data_path, device, val_size=val_size)
    clock = calibrate_clock(
        data, batch_sizes, augments, threads=threads, budget_seconds=budget_seconds, ready=barrier.wait
    )
    results.put(clock.to_dict())


def combined(clocks: Sequence[StepClock]) -> StepClock:
    """One clock of several measured side by side: the median cost of each setting."""
    first = clocks[0]

    def median(pick: Callable[[StepClock], float | None]) -> float | None:
        values = [v for v in map(pick, clocks) if v is not None]
        return statistics.median(values) if values else None

    costs = {}
    for key, cost in first.costs.items():
        costs[key] = StepCost(
            full=median(lambda c, k=key: c.costs[k].full),
            partial=median(lambda c, k=key: c.costs[k].partial),
            partial_size=cost.partial_size,
            spread=max(c.costs[key].spread for c in clocks),
        )
    return replace(
        first,
        costs=costs,
        rounds=min(c.rounds for c in clocks),
        seconds=max(c.seconds for c in clocks),
        evaluation=median(lambda c: c.evaluation) or 0.0,
        processes=len(clocks),
    )


@dataclass(frozen=True)
class LaneChoice:
    """What a new CPU study's lanes are, with the measurement behind them."""

    lanes: int
    clock: StepClock  # measured as those lanes train
    gain: float  # images a second with one lane per core, over one lane with every core (median by batch size)

    @property
    def note(self) -> str:
        taken = "so one lane per core" if self.lanes > 1 else f"under {LANES_GAIN:g}x, so one lane"
        return (
            f"lanes: one per core trained {self.gain:.2f}x the images a second of one lane with every core "
            f"(median over the batch sizes, measured now), {taken}"
        )


def choose_lanes(
    data: DeviceData, data_path: str | None, batch_sizes: Sequence[int], augments: Sequence[bool], cores: int
) -> LaneChoice:
    """Measure one lane with every core and one lane per core, and keep the faster layout."""
    single = measure_clock(data, data_path, batch_sizes, augments, threads=cores, budget_seconds=15.0)
    lanes = measure_clock(data, data_path, batch_sizes, augments, threads=1, processes=cores, budget_seconds=15.0)
    gain = statistics.median(cores * single.costs[k].full / lanes.costs[k].full for k in single.costs)
    return LaneChoice(cores, lanes, gain) if gain >= LANES_GAIN else LaneChoice(1, single, gain)


@dataclass(frozen=True)
class ClockRequest:
    """What `lenet-search clock` was asked for."""

    out: Path = option(Path("studies/clock.json"), "JSON file to write the step clock to.", flag="--out")
    data: str | None = option(None, "CIFAR-10 source", shared=True)
    device: str = option("auto", "the training device", shared=True)
    threads: int | None = option(None, "torch CPU threads", shared=True)
    val_size: int = option(DEFAULT_VAL_SIZE, "validation images held out", shared=True)
    lanes: int = option(1, "Processes measuring side by side, each with --threads: the lanes it will price.", min=1)
    batch_sizes: tuple[int, ...] = option((32, 64, 128, 256, 512, 1024, 2048), "Batch sizes to price.")
    augment: bool = option(False, "Price augmented steps (random crop and flip) instead.")


def measure_to_file(request: ClockRequest) -> StepClock:
    """Measure this device's step clock as `request` says and write it (with its hardware) to `request.out`."""
    r = request
    with blame("device"):
        device = resolve_device(r.device)
    with blame("data"):
        data = load_dataset(r.data, device, val_size=r.val_size)
    threads = r.threads if r.threads is not None else (max(1, cpu_count() // r.lanes) if device.type == "cpu" else None)
    clock = measure_clock(data, r.data, list(r.batch_sizes), [r.augment], threads=threads, processes=r.lanes)
    write_json(r.out, clock.to_dict())
    return clock
