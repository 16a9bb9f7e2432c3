"""A population's training: K trials of one batch size trained as one wide model (lenet/wide.py),
each with its own learning rate, momentum, StepLR schedule, seed and data order, advanced
evaluation by evaluation like `TrainingRun`.

Member k draws its epoch permutations from its own generator seeded by its config, as its solo
run does, and starts from its solo run's initial weights, so it trains on the same batches from
the same start; only the kernels' rounding (grouped against dense convolutions) separates its
curve from the solo one. The members share the epoch's evaluation steps (one batch size, one
`evals_per_epoch`). A member that is stopped, diverges or spends its budget leaves its slot
idle (rate and momentum 0: its weights stay as they were) until `refill` gives the slot the next
trial at an epoch boundary. Runs on the CPU as well; on a card the point is the launches saved.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData
from lenet.device import DevicePolicy, policy_for
from lenet.errors import ConfigError
from lenet.flat import flatten_parameters
from lenet.model import LeNet5
from lenet.step import EVAL_BATCH, build_model
from lenet.steps import Capture, GraphedSteps, StaticSteps, capture_cuda
from lenet.train import Status, evaluation_steps
from lenet.update import MemberSgdUpdate, step_lr
from lenet.wide import WideLeNet5, gather_batches, members_loss, owners_of


@dataclass
class Member:
    """One slot's trial: its config, progress and curve."""

    config: TrainConfig
    generator: torch.Generator
    epoch: int = 0  # epochs begun
    step: int = 0
    images: int = 0
    train_seconds: float = 0.0  # the population's measured training time since the member joined
    wall_seconds: float = 0.0
    history: list[EvalRecord] = field(default_factory=list)
    status: Status = "running"
    reason: str = "running"


class PopulationRun:
    """Trains the members of `configs` (one per slot; None: an idle slot) together. `advance()`
    trains every running member to the next evaluation and returns {slot: its record}."""

    def __init__(
        self,
        configs: Sequence[TrainConfig | None],
        data: DeviceData,
        *,
        policy: DevicePolicy | None = None,
        capture: Capture = capture_cuda,
    ) -> None:
        given = [c for c in configs if c is not None]
        if not given:
            raise ConfigError("a population needs at least one member")
        first = given[0]
        self.batch_size, self.evals_per_epoch, self.nesterov = first.batch_size, first.evals_per_epoch, first.nesterov
        for config in given:
            self._check_fits(config)
        self.data, self.policy = data, policy or policy_for(data.device)
        self.slots = len(configs)
        n = len(data.train_x)
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        probe = TrainConfig(batch_size=self.batch_size, evals_per_epoch=self.evals_per_epoch, max_epochs=1)
        self.eval_steps = set(evaluation_steps(probe, n))
        models = [self._initial(c) for c in configs]
        self.model = WideLeNet5.of(models).to(memory_format=self.policy.memory_format)
        self.params = flatten_parameters(self.model)
        self.update = MemberSgdUpdate(
            self.params,
            owners_of(self.model, self.params),
            [0.0] * self.slots,
            [0.0] * self.slots,
            [0.0] * self.slots,
            self.nesterov,
        )
        self.members: list[Member | None] = [None] * self.slots
        for slot, config in enumerate(configs):
            if config is not None:
                self._join(slot, config, models[slot])
        device, acc = data.device, self.policy.accumulator_dtype
        self.loss_sums = torch.zeros(self.slots, device=device, dtype=acc)
        self.correct = torch.zeros(self.slots, device=device, dtype=torch.int64)
        self.seen = 0  # images stepped, as the static steps count them (members count their own)
        # The batches found on the device from one permutation per member, replayed from CUDA
        # graphs where the policy says so (lenet/steps.py).
        self.steps: StaticSteps = (
            GraphedSteps(self, n, self.batch_size, None, capture, rows=self.slots)
            if self.policy.graph_steps
            else StaticSteps(self, n, self.batch_size, None, rows=self.slots)
        )
        self.at_epoch_boundary = True
        self._records = self._run()

    def _initial(self, config: TrainConfig | None) -> LeNet5:
        seed_config = config or TrainConfig(seed=0)  # an idle slot: any weights, never trained
        return build_model(seed_config, self.policy, self.data.num_classes)

    def _join(self, slot: int, config: TrainConfig, model: LeNet5) -> None:
        self.model.load_member(slot, model)
        self.update.reset_member(slot)
        self.update.set_member(slot, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        self.members[slot] = Member(config, self.policy.generator(config.seed))

    def refill(self, slot: int, config: TrainConfig) -> None:
        """Slot `slot`, idle, takes the trial of `config` from the next epoch on."""
        if not self.at_epoch_boundary:
            raise RuntimeError("a slot is refilled only at an epoch boundary")
        member = self.members[slot]
        if member is not None and member.status == "running":
            raise RuntimeError(f"slot {slot} is still training")
        self._check_fits(config)
        self._join(slot, config, self._initial(config))

    def _check_fits(self, config: TrainConfig) -> None:
        """Members share the steps' shape and the evaluations; augmentation would need a
        generator per member inside the step."""
        shared = (config.batch_size, config.evals_per_epoch, config.nesterov, config.augment)
        if shared != (self.batch_size, self.evals_per_epoch, self.nesterov, False):
            raise ConfigError(
                "a population's members share one batch size, evals_per_epoch and nesterov, and do not augment"
            )

    def stop(self, slot: int, reason: str) -> None:
        """End member `slot`'s trial early; its slot idles until refilled."""
        member = self.members[slot]
        if member is not None and member.status == "running":
            member.status, member.reason = "stopped", reason
            self._idle(slot)
        if not self.running():  # the idle slots need not finish the epoch: a refill starts the next
            self.at_epoch_boundary = True
            self._records = self._run()

    def running(self) -> list[int]:
        return [s for s, m in enumerate(self.members) if m is not None and m.status == "running"]

    def advance(self) -> dict[int, EvalRecord]:
        """Train the running members to the next evaluation: {slot: record}; empty once none runs."""
        if not self.running():
            # The last member ended (diverged, say) within an epoch: the idle slots need not
            # finish it, and a refill starts the next.
            if not self.at_epoch_boundary:
                self.at_epoch_boundary = True
                self._records = self._run()
            return {}
        records = next(self._records, None)
        if records is None:  # the last run of epochs ended with no member left: start anew
            self._records = self._run()
            records = next(self._records, {})
        return records

    def member_model(self, slot: int) -> nn.Module:
        """Member `slot`'s weights as a LeNet-5 of its own."""
        return self.model.member(slot)

    def _idle(self, slot: int) -> None:
        self.update.set_member(slot, lr=0.0, momentum=0.0, weight_decay=0.0)
        self.update.reset_member(slot)

    def _end_budgets(self) -> None:
        for slot in self.running():
            member = self.members[slot]
            if member.epoch >= member.config.max_epochs:
                member.status, member.reason = "completed", f"trained all {member.config.max_epochs} epochs"
                self._idle(slot)

    def _begin_epoch(self) -> None:
        n = len(self.data.train_x)
        idle = torch.arange(n, device=self.data.device)  # an idle slot trains on anything: its rate is 0
        rows = [idle] * self.slots
        for slot in self.running():
            member = self.members[slot]
            # The member's own generator, drawn as its solo run draws it: the same batches.
            rows[slot] = torch.randperm(n, device=self.policy.generator_device, generator=member.generator).to(
                self.data.device
            )
            self.update.set_member(slot, lr=step_lr(member.config, member.epoch))
            member.epoch += 1
        self.steps.begin_epoch(torch.stack(rows))

    def _step(self, i: int) -> None:
        self.steps.step(i)

    def state(self) -> list[torch.Tensor]:
        """Every tensor a step changes."""
        return [self.params, self.params.grad, self.update.buffer, self.loss_sums, self.correct]

    def compute(self, idx: torch.Tensor, generator: torch.Generator | None) -> None:
        """One step of every member on its batch of `idx` (K, B): the device work a graph captures."""
        x, y = gather_batches(self.data.train_x, idx), self.data.train_y[idx]
        with self.policy.autocast():
            logits = self.model(x)
            loss = members_loss(logits.float(), y)
        self.params.grad.zero_()
        loss.backward()
        self.update.step()
        with torch.no_grad():
            k, size = idx.shape
            per_member = nn.functional.cross_entropy(
                logits.detach().float().reshape(k * size, -1), y.reshape(-1), reduction="none"
            ).view(k, size)
            self.loss_sums.add_(per_member.sum(dim=1).to(self.loss_sums.dtype))
            self.correct.add_((logits.detach().argmax(dim=2) == y).sum(dim=1))

    def _evaluate(self) -> tuple[list[float], list[float]]:
        """Every member's validation loss and accuracy, one read back for all."""
        x, y, k = self.data.val_x, self.data.val_y, self.slots
        loss = torch.zeros(k, device=x.device, dtype=self.policy.accumulator_dtype)
        correct = torch.zeros(k, device=x.device, dtype=torch.int64)
        was = self.model.training
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(x), EVAL_BATCH):
                xb, yb = x[start : start + EVAL_BATCH], y[start : start + EVAL_BATCH]
                logits = self.model(xb.repeat(1, k, 1, 1)).float()  # (K, B, C): every member on the same images
                per = nn.functional.cross_entropy(
                    logits.reshape(-1, logits.shape[2]), yb.repeat(k), reduction="none"
                ).view(k, -1)
                loss += per.sum(dim=1).to(loss.dtype)
                correct += (logits.argmax(dim=2) == yb).sum(dim=1)
        self.model.train(was)
        values = torch.stack([loss, correct.to(loss.dtype)]).tolist()
        return [v / len(x) for v in values[0]], [v / len(x) for v in values[1]]

    def _run(self) -> Iterator[dict[int, EvalRecord]]:
        policy = self.policy
        self.model.train()
        images_since: list[int] = [0] * self.slots
        wall_tick = policy.clock()
        while self.running():
            tick = policy.clock()  # the epoch's shuffles count, as in a solo run (lenet/train.py)
            self._begin_epoch()
            self.at_epoch_boundary = False
            n = len(self.data.train_x)
            for i in range(self.steps_per_epoch):
                self._step(i)
                size = min(self.batch_size, n - i * self.batch_size)
                for slot in self.running():
                    member = self.members[slot]
                    member.step += 1
                    member.images += size
                    images_since[slot] += size
                if i + 1 not in self.eval_steps:
                    continue
                elapsed = policy.clock() - tick
                sums = torch.stack([self.loss_sums, self.correct.to(self.loss_sums.dtype)]).tolist()
                self.loss_sums.zero_()
                self.correct.zero_()
                val_loss, val_acc = self._evaluate()
                wall = policy.clock() - wall_tick
                records: dict[int, EvalRecord] = {}
                for slot in self.running():
                    member = self.members[slot]
                    member.train_seconds += elapsed
                    member.wall_seconds += wall
                    seen = images_since[slot]
                    images_since[slot] = 0
                    train_loss, train_acc = sums[0][slot] / seen, sums[1][slot] / seen
                    diverged = not math.isfinite(train_loss)
                    record = EvalRecord(
                        epoch=member.epoch - 1 + (i + 1) / self.steps_per_epoch,
                        step=member.step,
                        images=member.images,
                        train_seconds=member.train_seconds,
                        wall_seconds=member.wall_seconds,
                        lr=step_lr(member.config, member.epoch - 1),
                        train_loss=train_loss,
                        train_accuracy=train_acc,
                        val_loss=float("nan") if diverged else val_loss[slot],
                        val_accuracy=0.0 if diverged else val_acc[slot],
                    )
                    member.history.append(record)
                    records[slot] = record
                    if diverged:
                        member.status = "diverged"
                        member.reason = f"training loss became {train_loss} in epoch {member.epoch}"
                        self._idle(slot)
                self.at_epoch_boundary = i + 1 == self.steps_per_epoch
                if self.at_epoch_boundary:
                    self._end_budgets()
                yield records  # the caller may stop members; refills wait for the epoch's end
                if not self.running():  # idle slots need not finish the epoch
                    self.at_epoch_boundary = True
                    return
                tick = wall_tick = policy.clock()
