"""SGD with momentum on the flat parameter, written out, with its hyperparameters as tensors.

`torch.optim.SGD` takes its learning rate, momentum and weight decay as Python floats: a CUDA
graph of a step would bake them in, and its tensor-lr path reads the tensor back on the host
(`alpha=-lr`, an `.item()`). Here they are 0-d tensors on the device, so one captured step
serves every trial and StepLR sets the rate with a `fill_` (the GPU issue's design note,
section 1). The same code runs eagerly on every device, so the eager step and a graphed one
update alike. On the CPU it is bitwise `torch.optim.SGD`'s single-tensor update
(tests/lenet/test_update.py): a zero momentum buffer times the momentum plus the first
gradient is that gradient exactly, as SGD's first step clones it.
"""

from __future__ import annotations

import torch
from torch import nn

from lenet.config import TrainConfig


class SgdUpdate:
    """The update of `param` (its `.grad` the flat gradient): momentum, weight decay and
    Nesterov as `torch.optim.SGD` has them, without dampening."""

    def __init__(self, param: nn.Parameter, lr: float, momentum: float, weight_decay: float, nesterov: bool) -> None:
        self.param = param
        like = {"device": param.device, "dtype": param.dtype}
        self.lr = torch.tensor(lr, **like)
        self.momentum = torch.tensor(momentum, **like)
        self.weight_decay = torch.tensor(weight_decay, **like)
        self.decays = weight_decay != 0  # host-side: the step's shape, not a value
        self.nesterov = nesterov
        self.buffer = torch.zeros_like(param)

    @classmethod
    def for_config(cls, param: nn.Parameter, config: TrainConfig) -> SgdUpdate:
        return cls(param, config.lr, config.momentum, config.weight_decay, config.nesterov)

    def set_lr(self, lr: float) -> None:
        """The learning rate for the steps to come (a fill: no host synchronisation)."""
        self.lr.fill_(lr)

    @torch.no_grad()
    def step(self) -> None:
        grad = self.param.grad
        if self.decays:
            grad = grad.addcmul(self.param, self.weight_decay)  # grad + weight_decay * param, as SGD's add(alpha=)
        self.buffer.mul_(self.momentum).add_(grad)
        direction = grad.addcmul(self.buffer, self.momentum) if self.nesterov else self.buffer
        self.param.addcmul_(direction, self.lr, value=-1)  # param - lr * direction, as SGD's add_(alpha=-lr)


def step_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch `epoch` (from 0) under StepLR: the initial rate times gamma
    once every `step_size` epochs, multiplied in turn as `torch.optim.lr_scheduler.StepLR`
    chains it, so the values are its own to the last bit."""
    lr = config.lr
    for e in range(1, epoch + 1):
        if e % config.step_size == 0:
            lr = lr * config.gamma
    return lr
