"""The step clock: what one optimizer step costs on this device and thread count, measured once.

A trial's training time, read off a wall clock, moves with everything else the machine does
(docs/search.md, "The clock"). The step clock prices the steps a run took instead: each batch
size (and augmentation setting) has a measured cost per full batch and per the epoch's partial
last batch, so the same steps always cost the same seconds, on any host that joins the study.

The costs are measured by the training loop's own step (`lenet.train.Stepper`): after a
warm-up of every shape, in blocks of steps of about `block_seconds`, interleaved across the
batch sizes round after round (so drift in the machine's load hits them all alike), and the
median over the rounds is kept.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from lenet.config import TrainConfig
from lenet.data import DeviceData
from lenet.device import DevicePolicy, hardware, policy_for, set_threads, warm_up
from lenet.errors import InputError
from lenet.step import EVAL_BATCH, Stepper, evaluate
from lenet.steps import StaticSteps, make_steps

CLOCK_FORMAT = "lenet-search/step-clock-v1"


def key(batch_size: int, augment: bool) -> str:
    return f"{batch_size}{'+augment' if augment else ''}"


@dataclass(frozen=True)
class StepCost:
    full: float  # seconds per step on a full batch
    partial: float | None  # seconds per step on the epoch's last, partial batch (None: there is none)
    partial_size: int
    spread: float  # (max - min) / median of the full-batch rounds: how steady the machine was


@dataclass(frozen=True)
class StepClock:
    """Seconds per optimizer step, by batch size and augmentation, for one training-set size."""

    device: str
    threads: int
    train_size: int
    costs: dict[str, StepCost]
    rounds: int
    seconds: float = 0.0  # wall time the calibration took
    hardware: dict[str, Any] = field(default_factory=dict)
    evaluation: float = 0.0  # seconds per validation evaluation (0: a clock measured before it was)
    processes: int = 1  # processes that measured it side by side, as the lanes that train with it run

    def cost(self, batch_size: int, augment: bool) -> StepCost:
        try:
            return self.costs[key(batch_size, augment)]
        except KeyError:
            raise InputError(
                f"the step clock has no cost for batch size {batch_size}{' with augmentation' if augment else ''} "
                f"(it has {', '.join(self.costs)})"
            ) from None

    def seconds_for(self, batch_size: int, augment: bool, steps: int) -> float:
        """What `steps` optimizer steps from the start of training cost: every epoch ends with
        one partial batch (when the training set does not divide), the rest are full."""
        c = self.cost(batch_size, augment)
        per_epoch = math.ceil(self.train_size / batch_size)
        partial = steps // per_epoch if c.partial is not None else 0
        return (steps - partial) * c.full + partial * (c.partial or 0.0)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": CLOCK_FORMAT,
            "device": self.device,
            "threads": self.threads,
            "train_size": self.train_size,
            "rounds": self.rounds,
            "seconds": self.seconds,
            "hardware": self.hardware,
            "costs": {k: vars(c) for k, c in self.costs.items()},
        }
        # Written only when measured, so that a clock of an earlier version reads back unchanged.
        if self.evaluation:
            d["evaluation"] = self.evaluation
        if self.processes != 1:
            d["processes"] = self.processes
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepClock:
        if d.get("format") != CLOCK_FORMAT:
            raise InputError(f"not a step clock (format {d.get('format')!r}, expected {CLOCK_FORMAT!r})")
        try:
            costs = {k: StepCost(**c) for k, c in d["costs"].items()}
            return cls(
                d["device"],
                d["threads"],
                d["train_size"],
                costs,
                d["rounds"],
                d.get("seconds", 0.0),
                dict(d.get("hardware") or {}),
                d.get("evaluation", 0.0),
                d.get("processes", 1),
            )
        except (KeyError, TypeError) as exc:
            raise InputError(f"step clock is incomplete: {exc}") from None

    def covers(self, batch_sizes: Iterable[int], augments: Iterable[bool]) -> list[str]:
        """The keys of these settings that the clock has no cost for."""
        return [key(b, a) for b in batch_sizes for a in augments if key(b, a) not in self.costs]


def calibrate_clock(
    data: DeviceData,
    batch_sizes: Iterable[int],
    augments: Iterable[bool] = (False,),
    *,
    threads: int | None = None,
    policy: DevicePolicy | None = None,
    rounds: int = 7,
    partial_rounds: int = 3,
    block_seconds: float = 0.1,
    budget_seconds: float = 30.0,
    ready: Callable[[], None] | None = None,
) -> StepClock:
    """Measure the step clock for every batch size and augmentation setting given, and the
    validation evaluation. The epoch's partial last batch and the evaluation are timed in the
    first `partial_rounds` rounds only: a partial step is one of at least 22 in an epoch, and
    timing them in every round made the calibration 9.9 s against 7.2 s (docs/search.md, "The
    clock"). `ready` is called once everything is warmed up, before the first timing (processes
    measuring side by side start together there)."""
    started = time.perf_counter()
    policy = policy or policy_for(data.device)
    threads_used = set_threads(threads) if policy.device.type == "cpu" else 0
    n = len(data.train_x)
    settings = [(b, a) for b in sorted(set(batch_sizes)) for a in sorted(set(augments))]
    eval_chunks = (EVAL_BATCH, len(data.val_x) % EVAL_BATCH)
    warm_up(policy, [b for b, _ in settings] + [n % b for b, _ in settings], eval_chunks, data.num_classes)
    blocks = {(b, a): _Block(data, policy, b, a) for b, a in settings}
    full: dict[tuple[int, bool], list[float]] = {s: [] for s in settings}
    partial: dict[tuple[int, bool], list[float]] = {s: [] for s in settings}
    evaluations: list[float] = []
    if ready is not None:
        ready()
    partial_rounds = max(1, partial_rounds)  # every cost, and the evaluation, measured at least once
    done = 0
    for r in range(rounds):
        order = settings[r % len(settings) :] + settings[: r % len(settings)]  # interleaved, rotated
        for s in order:
            full[s].append(blocks[s].time(blocks[s].batch_size, block_seconds))
            if blocks[s].partial_size and r < partial_rounds:
                partial[s].append(blocks[s].time(blocks[s].partial_size, block_seconds))
        if r < partial_rounds:
            evaluations.append(blocks[settings[0]].evaluation())
        done += 1
        if done >= 3 and time.perf_counter() - started > budget_seconds:
            break
    costs = {}
    for s in settings:
        med = statistics.median(full[s])
        costs[key(*s)] = StepCost(
            full=med,
            partial=statistics.median(partial[s]) if partial[s] else None,
            partial_size=blocks[s].partial_size,
            spread=(max(full[s]) - min(full[s])) / med if med > 0 else 0.0,
        )
    return StepClock(
        str(policy.device),
        threads_used,
        n,
        costs,
        done,
        time.perf_counter() - started,
        hardware(policy.device),
        evaluation=statistics.median(evaluations),
    )


class _Block:
    """Steps of one batch size timed in blocks, on a throw-away model of the engine's own step."""

    def __init__(self, data: DeviceData, policy: DevicePolicy, batch_size: int, augment: bool) -> None:
        self.policy, self.batch_size, self.data = policy, batch_size, data
        self.partial_size = len(data.train_x) % batch_size
        config = TrainConfig(lr=0.01, momentum=0.9, batch_size=batch_size, augment=augment, max_epochs=1, seed=0)
        self.stepper = Stepper(config, data, policy)
        self.generator = policy.generator(0)
        self.n = len(data.train_x)
        self.per_block: dict[int, int] = {}
        # The steps the runs take: where they replay graphs, the clock times replays (lenet/steps.py).
        steps = make_steps(self.stepper, self.n, self.generator, graphs=policy.graph_steps)
        self.graphed = steps if isinstance(steps, StaticSteps) else None

    def time(self, size: int, block_seconds: float) -> float:
        """Seconds per step over a block of steps on batches of `size` images."""
        steps = self.per_block.get(size)
        if steps is None:  # size the block from one step
            steps = max(1, int(block_seconds / max(self._run(size, 1), 1e-6)))
            self.per_block[size] = steps
        return self._run(size, steps) / steps

    def evaluation(self) -> float:
        """Seconds of one validation evaluation of the block's model, as the training loop runs it."""
        start = self.policy.clock()
        evaluate(self.stepper.model, self.data.val_x, self.data.val_y, policy=self.policy)
        return self.policy.clock() - start

    def _run(self, size: int, steps: int) -> float:
        if self.graphed is not None:
            return self._run_graphed(size, steps)
        idx = [
            torch.randint(0, self.n, (size,), device=self.policy.generator_device, generator=self.generator).to(
                self.policy.device
            )
            for _ in range(steps)
        ]
        start = self.policy.clock()
        for i in idx:
            self.stepper(i, self.generator)
        return self.policy.clock() - start

    def _run_graphed(self, size: int, steps: int) -> float:
        graphed = self.graphed
        graphed.begin_epoch(torch.randperm(self.n, device=self.policy.device, generator=self.generator))
        i = graphed.steps_per_epoch - 1 if size != self.batch_size else 0  # the partial step is the last
        graphed.step(i)  # captured at first use, outside the timing
        start = self.policy.clock()
        for _ in range(steps):
            graphed.step(i)
        return self.policy.clock() - start
