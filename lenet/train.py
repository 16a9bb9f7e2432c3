"""The training loop: SGD with momentum, StepLR per epoch, a validation evaluation at fixed
steps, advanced evaluation by evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.device import DevicePolicy, policy_for, set_threads, warm_up
from lenet.step import EVAL_BATCH, Stepper, evaluate
from lenet.steps import make_steps
from lenet.update import step_lr

# running: it can still advance; completed: it trained its whole budget; stopped: its caller
# ended it early; diverged: its training loss stopped being finite.
Status = Literal["running", "completed", "stopped", "diverged"]
EvalCallback = Callable[[EvalRecord], "bool | str | None"]


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EvalRecord]
    status: Status
    reason: str
    model: nn.Module
    device: str
    threads: int

    @property
    def last(self) -> EvalRecord | None:
        return self.history[-1] if self.history else None

    @property
    def epochs(self) -> float:
        """Epochs trained (fractional when stopped within an epoch)."""
        return self.history[-1].epoch if self.history else 0.0

    @property
    def train_seconds(self) -> float:
        """Measured training time, evaluation excluded."""
        return self.history[-1].train_seconds if self.history else 0.0

    @property
    def wall_seconds(self) -> float:
        """Measured training and evaluation time."""
        return self.history[-1].wall_seconds if self.history else 0.0

    @property
    def best_val_accuracy(self) -> float:
        return max((r.val_accuracy for r in self.history), default=0.0)

    @property
    def final_val_accuracy(self) -> float | None:
        return self.history[-1].val_accuracy if self.history else None


def evaluation_steps(config: TrainConfig, train_size: int) -> list[int]:
    """The optimizer steps, from the start of training, at which a run of `config` evaluates:
    `evals_per_epoch` times an epoch, spread evenly, the last at the epoch's end."""
    per_epoch = math.ceil(train_size / config.batch_size)
    within = sorted({math.ceil(per_epoch * (k + 1) / config.evals_per_epoch) for k in range(config.evals_per_epoch)})
    return [epoch * per_epoch + i for epoch in range(config.max_epochs) for i in within]


class TrainingRun:
    """One training run, advanced evaluation by evaluation: `advance()` trains to the next
    validation evaluation and returns its record. A caller may stop pulling and come back later
    (the confirmation race keeps runs suspended): the run goes on exactly as if it had never
    paused, and neither the training clock nor the wall clock counts the pause. `train()`
    drives one to the end or to its callback's stop."""

    def __init__(
        self, config: TrainConfig, data: DeviceData, *, threads: int | None = None, policy: DevicePolicy | None = None
    ) -> None:
        self.config, self.data = config, data
        self.policy = policy or policy_for(data.device)
        self.threads = set_threads(threads) if data.device.type == "cpu" else 0
        # Every shape this run uses, warmed up before its clock starts: a full and a partial
        # batch, and the evaluation's full and partial chunks.
        n = len(data.train_x)
        warm_up(
            self.policy,
            (config.batch_size, n % config.batch_size),
            (EVAL_BATCH, len(data.val_x) % EVAL_BATCH),
            data.num_classes,
        )
        self.stepper = Stepper(config, data, self.policy)
        self.history: list[EvalRecord] = []
        self.status: Status = "running"
        self.reason = "running"
        self._records = self._run()

    def advance(self) -> EvalRecord | None:
        """Train to the next evaluation and return its record (also appended to `history`);
        None once the run has ended: its budget spent, its loss no longer finite, or stopped."""
        if self.status != "running":
            return None
        record = next(self._records, None)
        if record is None and self.status == "running":
            self.status, self.reason = "completed", f"trained all {self.config.max_epochs} epochs"
        return record

    def stop(self, reason: str) -> None:
        """End the run early; `reason` says why."""
        self.status, self.reason = "stopped", reason

    def release(self) -> None:
        """Its caller is done with it (a population's member gives its slot back; a solo run holds none)."""

    def result(self) -> TrainResult:
        return TrainResult(
            config=self.config,
            history=self.history,
            status=self.status,
            reason=self.reason,
            model=self.stepper.model,
            device=str(self.data.device),
            threads=self.threads,
        )

    def _run(self) -> Iterator[EvalRecord]:
        config, data, policy, stepper = self.config, self.data, self.policy, self.stepper
        model = stepper.model
        generator = policy.generator(config.seed)
        n, device = len(data.train_x), data.device
        steps = make_steps(stepper, n, generator, graphs=policy.graph_steps)
        steps_per_epoch = math.ceil(n / config.batch_size)
        eval_steps = {s for s in evaluation_steps(config, n) if s <= steps_per_epoch}  # within an epoch
        train_seconds = wall_seconds = 0.0
        step = images = 0
        model.train()
        wall_tick = policy.clock()
        for epoch in range(config.max_epochs):
            tick = policy.clock()
            perm = torch.randperm(n, device=policy.generator_device, generator=generator).to(device)
            lr_now = step_lr(config, epoch)  # StepLR's rate, set once an epoch (a fill on the device)
            stepper.update.set_lr(lr_now)
            steps.begin_epoch(perm)
            for i in range(steps_per_epoch):
                steps.step(i)
                step += 1
                images += min(config.batch_size, n - i * config.batch_size)
                if i + 1 not in eval_steps:
                    continue
                train_seconds += policy.clock() - tick
                train_loss, train_acc = stepper.take_averages()
                diverged = not math.isfinite(train_loss)
                if diverged:
                    self.status = "diverged"
                    self.reason = f"training loss became {train_loss} in epoch {epoch + 1}"
                    val_loss, val_acc = float("nan"), 0.0
                else:
                    val_loss, val_acc = evaluate(model, data.val_x, data.val_y, policy=policy)
                wall_seconds += policy.clock() - wall_tick
                record = EvalRecord(
                    epoch=epoch + (i + 1) / steps_per_epoch,
                    step=step,
                    images=images,
                    train_seconds=train_seconds,
                    wall_seconds=wall_seconds,
                    lr=lr_now,
                    train_loss=train_loss,
                    train_accuracy=train_acc,
                    val_loss=val_loss,
                    val_accuracy=val_acc,
                )
                self.history.append(record)
                if diverged:
                    return
                yield record  # the caller may pause here: neither clock runs until it resumes
                wall_tick = tick = policy.clock()


def train(
    config: TrainConfig,
    data: DeviceData,
    *,
    on_eval: EvalCallback | None = None,
    threads: int | None = None,
    policy: DevicePolicy | None = None,
) -> TrainResult:
    """Train LeNet-5 on `data` with `config`.

    After each validation evaluation `on_eval(record)` is called; a truthy return value
    stops training (a string is kept as the reason). A NaN or infinite training loss ends
    training with status "diverged" instead of raising.
    """
    run = TrainingRun(config, data, threads=threads, policy=policy)
    while (record := run.advance()) is not None:
        verdict = on_eval(record) if on_eval is not None else None
        if verdict:
            run.stop(verdict if isinstance(verdict, str) else f"stopped by callback after epoch {record.epoch:g}")
    return run.result()
