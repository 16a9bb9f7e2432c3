"""Training LeNet-5: SGD with momentum, StepLR per epoch, cross-entropy, evaluation callbacks."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Literal

import torch
from torch import nn

from lenet.data import DeviceData, augment_batch
from lenet.device import DevicePolicy, policy_for, set_threads, warm_up
from lenet.errors import InputError
from lenet.flat import flatten_parameters
from lenet.model import LeNet5


class ConfigError(InputError):
    """A training config with a value out of range, an unknown field or a wrong type."""


def _field(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one training run: sampled by the search, exported, retrained.

    Field metadata carries the help text, so the command line's flags are derived from
    this one definition.
    """

    lr: float = _field(0.05, "initial learning rate of SGD")
    momentum: float = _field(0.9, "SGD momentum")
    step_size: int = _field(4, "StepLR: epochs between learning-rate decays")
    gamma: float = _field(0.3, "StepLR: factor applied to the learning rate at each decay")
    batch_size: int = _field(128, "images per optimizer step")
    max_epochs: int = _field(10, "epochs to train at most")
    weight_decay: float = _field(0.0, "L2 weight decay of SGD")
    nesterov: bool = _field(False, "use Nesterov momentum")
    augment: bool = _field(False, "random crop (padding 4) and horizontal flip, per batch on the device")
    evals_per_epoch: int = _field(1, "validation evaluations per epoch (finer time-to-target)")
    seed: int = _field(0, "seed of weight initialisation, shuffling and augmentation")

    def __post_init__(self) -> None:
        problems = []
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append(f"lr must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            problems.append(f"momentum must be in [0, 1), got {self.momentum}")
        if self.step_size < 1:
            problems.append(f"step_size must be at least 1, got {self.step_size}")
        if not 0 < self.gamma <= 1:
            problems.append(f"gamma must be in (0, 1], got {self.gamma}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if self.max_epochs < 1:
            problems.append(f"max_epochs must be at least 1, got {self.max_epochs}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must not be negative, got {self.weight_decay}")
        if self.evals_per_epoch < 1:
            problems.append(f"evals_per_epoch must be at least 1, got {self.evals_per_epoch}")
        if self.nesterov and self.momentum == 0:
            problems.append("nesterov needs a momentum above 0")
        if problems:
            raise ConfigError("; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, require_all: bool = False) -> TrainConfig:
        """Build from a mapping (a config file); unknown keys and wrong types are errors.

        With `require_all`, every field must be present (an exported config names them all).
        """
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"unknown training config field(s): {', '.join(unknown)}")
        if require_all:
            missing = [name for name in known if name not in values]
            if missing:
                raise ConfigError(f"training config lacks field(s): {', '.join(missing)}")
        kwargs = {}
        for name, value in values.items():
            kind = type(known[name].default)
            if kind is bool and not isinstance(value, bool):
                raise ConfigError(f"training config field {name} must be true or false, got {value!r}")
            if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise ConfigError(f"training config field {name} must be an integer, got {value!r}")
            if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigError(f"training config field {name} must be a number, got {value!r}")
            kwargs[name] = kind(value)
        return cls(**kwargs)

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}


@dataclass(frozen=True)
class EvalRecord:
    """One point of the learning curve, taken at a validation evaluation."""

    epoch: float  # epochs trained so far (fractional with several evaluations per epoch)
    step: int  # optimizer steps so far
    images: int  # training images seen so far
    train_seconds: float  # training time so far, evaluation excluded
    wall_seconds: float  # training and evaluation so far (not the caller's work between evaluations)
    lr: float  # learning rate in force for the steps just taken
    train_loss: float  # mean over the steps since the previous evaluation
    train_accuracy: float
    val_loss: float
    val_accuracy: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class RunSummary:
    """What a run amounts to, measured against a target: the figures a study stores for a
    trial and `train` prints, computed in one place."""

    best_val_accuracy: float
    final_val_accuracy: float | None
    epochs: float  # epochs trained (fractional when stopped within an epoch)
    train_seconds: float
    wall_seconds: float
    seconds_to_target: float | None  # None: the target was not reached (or not given)
    epochs_to_target: float | None
    images_to_target: int | None


CHANCE = 0.1  # validation accuracy of an untrained ten-class model: where every curve starts


@dataclass(frozen=True)
class Crossing:
    """Where a learning curve first reaches the target: between the last evaluation below it
    (None: the start of training) and the first at or above it, a `fraction` of the way,
    by linear interpolation of validation accuracy. Evaluations come half an epoch apart; the
    crossing is resolved within that interval instead of at its end (docs/search.md measures
    the error against dense evaluations)."""

    before: EvalRecord | None
    after: EvalRecord
    fraction: float  # in (0, 1]

    def interpolate(self, measure: Callable[[EvalRecord], float]) -> float:
        """`measure` (seconds, epochs, images, or a clock's seconds) at the crossing; it is 0
        before the first evaluation."""
        low = measure(self.before) if self.before is not None else 0.0
        return low + self.fraction * (measure(self.after) - low)


def crossing(history: Sequence[EvalRecord], target: float) -> Crossing | None:
    """The first crossing of `target` by validation accuracy, or None if it was never reached."""
    for i, record in enumerate(history):
        if record.val_accuracy >= target:
            before = history[i - 1] if i > 0 else None
            low = before.val_accuracy if before is not None else min(CHANCE, target)
            span = record.val_accuracy - low
            fraction = 1.0 if span <= 0 else min(1.0, max(0.0, (target - low) / span))
            return Crossing(before, record, fraction)
    return None


Outcome = Literal["completed", "stopped", "diverged"]
EvalCallback = Callable[[EvalRecord], "bool | str | None"]


@dataclass
class TrainResult:
    config: TrainConfig
    history: list[EvalRecord]
    outcome: Outcome
    reason: str
    model: nn.Module
    device: str
    threads: int

    @property
    def train_seconds(self) -> float:
        return self.history[-1].train_seconds if self.history else 0.0

    @property
    def best_val_accuracy(self) -> float:
        return max((r.val_accuracy for r in self.history), default=0.0)

    def summary(self, target: float | None) -> RunSummary:
        """The run's figures; time to target interpolated between the two evaluations that
        bracket the crossing (see `crossing`)."""
        cross = crossing(self.history, target) if target is not None else None
        last = self.history[-1] if self.history else None
        return RunSummary(
            best_val_accuracy=self.best_val_accuracy,
            final_val_accuracy=last.val_accuracy if last else None,
            epochs=last.epoch if last else 0.0,
            train_seconds=self.train_seconds,
            wall_seconds=last.wall_seconds if last else 0.0,
            seconds_to_target=cross.interpolate(lambda r: r.train_seconds) if cross else None,
            epochs_to_target=cross.interpolate(lambda r: r.epoch) if cross else None,
            images_to_target=round(cross.interpolate(lambda r: r.images)) if cross else None,
        )


# Images per evaluation chunk. On 2 CPU cores 1000 evaluated the 5000 validation images 21 %
# faster than 2500 (0.118 s against 0.150 s, median of 15 interleaved rounds): an evaluation runs
# every half epoch, about 600 of them in a 100-trial study.
EVAL_BATCH = 1000


@torch.inference_mode()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = EVAL_BATCH, policy: DevicePolicy | None = None
) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` on (x, y), in fp32 whatever the training
    precision: the target was measured in fp32."""
    policy = policy or policy_for(x.device)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device, dtype=policy.accumulator_dtype)
    correct = torch.zeros((), device=x.device, dtype=torch.int64)
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size])
        yb = y[start : start + batch_size]
        loss_sum += nn.functional.cross_entropy(logits.float(), yb, reduction="sum").to(policy.accumulator_dtype)
        correct += (logits.argmax(dim=1) == yb).sum()
    model.train(was_training)
    return loss_sum.item() / len(x), correct.item() / len(x)


def build_model(config: TrainConfig, policy: DevicePolicy, num_classes: int = 10) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LeNet5(num_classes)
    return model.to(device=policy.device, memory_format=policy.memory_format)


class Stepper:
    """One optimizer step on the batch at `idx`: gather, augmentation, forward, backward, SGD
    update, and the running sums of the training loss and hits. The training loop and the step
    clock (lenet/clock.py) run this same code, so the clock prices all the work a step does:
    with the sums outside it, trials on 2 CPU cores took 1.10-1.19x the clock's price at batch
    32-128, and 1.05-1.53x on an H100, whose step is bound by kernel launches."""

    def __init__(self, config: TrainConfig, data: DeviceData, policy: DevicePolicy) -> None:
        self.config, self.data, self.policy = config, data, policy
        self.model = build_model(config, policy, data.num_classes)
        # One flat tensor for the optimizer: at batch 32 per-tensor optimizer work was ~7 % of a step.
        self.params = flatten_parameters(self.model)
        self.optimizer = torch.optim.SGD(
            [self.params],
            lr=config.lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
            nesterov=config.nesterov,
        )
        # Running sums stay on the device: no host synchronisation per step.
        self.loss_sum = torch.zeros((), device=data.device, dtype=policy.accumulator_dtype)
        self.correct = torch.zeros((), device=data.device, dtype=torch.int64)
        self.seen = 0

    def __call__(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        xb, yb = self.data.train_x[idx], self.data.train_y[idx]
        if self.config.augment:
            xb = augment_batch(xb, generator)
        with self.policy.autocast():
            logits = self.model(xb)
            loss = nn.functional.cross_entropy(logits.float(), yb)
        self.params.grad.zero_()  # not None: autograd accumulates into the flat buffer's views
        loss.backward()
        self.optimizer.step()
        self.loss_sum.add_(loss.detach(), alpha=len(idx))  # one kernel, summed in the accumulator's dtype
        self.correct.add_((logits.detach().argmax(dim=1) == yb).sum())
        self.seen += len(idx)

    def take_averages(self) -> tuple[float, float]:
        """Mean training loss and accuracy over the steps since the last call; starts anew."""
        loss, accuracy = self.loss_sum.item() / self.seen, self.correct.item() / self.seen
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen = 0
        return loss, accuracy


class TrainingRun:
    """One training run, advanced evaluation by evaluation: `advance()` trains to the next
    validation evaluation and returns its record. A caller may stop pulling and come back later
    (the confirmation race leaves a run capped at a rival's time suspended, and continues it only
    if the ranking needs its real time): the run goes on exactly as if it had never paused, and
    neither the training clock nor the wall clock counts the pause. `train()` drives one to the
    end or to its callback's stop."""

    def __init__(
        self, config: TrainConfig, data: DeviceData, *, threads: int | None = None, policy: DevicePolicy | None = None
    ) -> None:
        self.config, self.data = config, data
        self.policy = policy or policy_for(data.device)
        self.threads = set_threads(threads) if data.device.type == "cpu" else 0
        # Every shape this run uses, warmed up before its clock starts: a full and a partial
        # batch, and the evaluation's full and partial chunks.
        n = len(data.train_x)
        warm_up(self.policy, (config.batch_size, n % config.batch_size),
                (EVAL_BATCH, len(data.val_x) % EVAL_BATCH), data.num_classes)  # fmt: skip
        self.stepper = Stepper(config, data, self.policy)
        self.history: list[EvalRecord] = []
        self.outcome: Outcome = "completed"
        self.reason = f"trained all {config.max_epochs} epochs"
        self._records = self._run()

    def advance(self) -> EvalRecord | None:
        """Train to the next evaluation and return its record (also appended to `history`);
        None once the run has ended: its budget spent, or its loss no longer finite."""
        if self.outcome != "completed":
            return None
        return next(self._records, None)

    def stop(self, reason: str) -> None:
        """End the run early; `reason` says why."""
        self.outcome, self.reason = "stopped", reason

    def result(self) -> TrainResult:
        return TrainResult(config=self.config, history=self.history, outcome=self.outcome, reason=self.reason,
                           model=self.stepper.model, device=str(self.data.device), threads=self.threads)  # fmt: skip

    def _run(self) -> Iterator[EvalRecord]:
        config, data, policy, stepper = self.config, self.data, self.policy, self.stepper
        model, optimizer = stepper.model, stepper.optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
        generator = policy.generator(config.seed)
        n, device = len(data.train_x), data.device
        steps_per_epoch = math.ceil(n / config.batch_size)
        # Evaluation points within an epoch, in steps, spread evenly; the last is the epoch's end.
        per_epoch = config.evals_per_epoch
        eval_steps = {math.ceil(steps_per_epoch * (k + 1) / per_epoch) for k in range(per_epoch)}
        train_seconds = wall_seconds = 0.0
        step = images = 0
        model.train()
        wall_tick = policy.clock()
        for epoch in range(config.max_epochs):
            tick = policy.clock()
            perm = torch.randperm(n, device=policy.generator_device, generator=generator).to(device)
            lr_now = optimizer.param_groups[0]["lr"]
            for i in range(steps_per_epoch):
                idx = perm[i * config.batch_size : (i + 1) * config.batch_size]
                stepper(idx, generator)
                step += 1
                images += len(idx)
                if i + 1 not in eval_steps:
                    continue
                train_seconds += policy.clock() - tick
                train_loss, train_acc = stepper.take_averages()
                diverged = not math.isfinite(train_loss)
                if diverged:
                    self.outcome = "diverged"
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
            scheduler.step()


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
    training with outcome "diverged" instead of raising.
    """
    run = TrainingRun(config, data, threads=threads, policy=policy)
    while (record := run.advance()) is not None:
        verdict = on_eval(record) if on_eval is not None else None
        if verdict:
            run.stop(verdict if isinstance(verdict, str) else f"stopped by callback after epoch {record.epoch:g}")
    return run.result()
