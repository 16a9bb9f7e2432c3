"""The work of one optimizer step, and of one evaluation: what the training loop runs and
the step clock prices."""

from __future__ import annotations

import torch
from torch import nn

from lenet.config import TrainConfig
from lenet.data import DeviceData, augment_batch
from lenet.device import DevicePolicy, policy_for
from lenet.flat import flatten_parameters
from lenet.model import LeNet5
from lenet.update import SgdUpdate

# Images per evaluation chunk: faster than larger chunks on 2 CPU cores (docs/engine.md, "Evaluation").
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
    """LeNet-5 initialised from `config.seed`, without touching the global generator's state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = LeNet5(num_classes, policy.pool_by_pairs)
    return model.to(device=policy.device, memory_format=policy.memory_format)


class Stepper:
    """One optimizer step on the batch at `idx`: gather, augmentation, forward, backward, SGD
    update, and the running sums of the training loss and hits. The training loop and the step
    clock (lenet/clock.py) run this same code, so the clock prices all the work a step does
    (docs/engine.md, "Accounting without synchronisation")."""

    def __init__(self, config: TrainConfig, data: DeviceData, policy: DevicePolicy) -> None:
        self.config, self.data, self.policy = config, data, policy
        self.model = build_model(config, policy, data.num_classes)
        # One flat tensor for the optimizer: per-tensor optimizer work showed at batch 32 (lenet/flat.py).
        self.params = flatten_parameters(self.model)
        # SGD written out, its rates device tensors: what a CUDA graph of the step needs (lenet/update.py).
        self.update = SgdUpdate.for_config(self.params, config)
        # Running sums stay on the device: no host synchronisation per step.
        self.loss_sum = torch.zeros((), device=data.device, dtype=policy.accumulator_dtype)
        self.correct = torch.zeros((), device=data.device, dtype=torch.int64)
        self.seen = 0

    def __call__(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        self.compute(idx, generator)
        self.seen += len(idx)

    def compute(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        """The step's device work alone: what a CUDA graph captures (lenet/steps.py), the host
        counting the images apart."""
        xb, yb = self.data.train_x[idx], self.data.train_y[idx]
        if self.config.augment:
            xb = augment_batch(xb, generator)
        with self.policy.autocast():
            logits = self.model(xb)
            loss = nn.functional.cross_entropy(logits.float(), yb)
        self.params.grad.zero_()  # not None: autograd accumulates into the flat buffer's views
        loss.backward()
        self.update.step()
        self.loss_sum.add_(loss.detach(), alpha=len(idx))  # one kernel, summed in the accumulator's dtype
        self.correct.add_((logits.detach().argmax(dim=1) == yb).sum())

    def state(self) -> list[torch.Tensor]:
        """Every tensor a step changes (a graph's capture is checked against them)."""
        return [self.params, self.params.grad, self.update.buffer, self.loss_sum, self.correct]

    def take_averages(self) -> tuple[float, float]:
        """Mean training loss and accuracy over the steps since the last call; starts anew."""
        loss, accuracy = self.loss_sum.item() / self.seen, self.correct.item() / self.seen
        self.loss_sum.zero_()
        self.correct.zero_()
        self.seen = 0
        return loss, accuracy
