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

    def step(self) -> None:
        sgd_step(self.param, self.buffer, self.lr, self.momentum, self.weight_decay, self.decays, self.nesterov)


class MemberSgdUpdate:
    """The same update for a population's flat parameter (lenet/wide.py): each element takes
    the learning rate, momentum and weight decay of the member that owns it (`owners`, the
    member of each element of `param`). Per member the arithmetic is `SgdUpdate`'s, element by
    element; the per-element rates are gathered from the members' once per change."""

    def __init__(
        self,
        param: nn.Parameter,
        owners: torch.Tensor,
        lr: list[float],
        momentum: list[float],
        weight_decay: list[float],
        nesterov: bool,
    ) -> None:
        self.param, self.owners, self.nesterov = param, owners, nesterov
        like = {"device": param.device, "dtype": param.dtype}
        self.member_rates = {
            "lr": torch.tensor(lr, **like),
            "momentum": torch.tensor(momentum, **like),
            "weight_decay": torch.tensor(weight_decay, **like),
        }
        # Always the decay's kernels: a graph bakes this choice in, and a refilled member may bring
        # a weight decay; a rate of 0 adds 0 * param, the gradient exactly.
        self.decays = True
        self.buffer = torch.zeros_like(param)
        self.lr, self.momentum, self.weight_decay = (torch.empty_like(param) for _ in range(3))
        self._expand()

    def set_member(self, member: int, **rates: float) -> None:
        """Member `member`'s lr, momentum or weight_decay for the steps to come (fills and a
        gather: no host synchronisation)."""
        for name, value in rates.items():
            self.member_rates[name][member].fill_(value)
        self._expand()

    def reset_member(self, member: int) -> None:
        """Member `member`'s momentum forgotten: its slot starts a new trial."""
        self.buffer.masked_fill_(self.owners == member, 0.0)

    def _expand(self) -> None:
        for name in ("lr", "momentum", "weight_decay"):
            torch.index_select(self.member_rates[name], 0, self.owners, out=getattr(self, name))

    def step(self) -> None:
        sgd_step(self.param, self.buffer, self.lr, self.momentum, self.weight_decay, self.decays, self.nesterov)


@torch.no_grad()
def sgd_step(
    param: nn.Parameter,
    buffer: torch.Tensor,
    lr: torch.Tensor,
    momentum: torch.Tensor,
    weight_decay: torch.Tensor,
    decays: bool,
    nesterov: bool,
) -> None:
    """One SGD step of `param` by its `.grad`, the rates 0-d tensors or one per element."""
    grad = param.grad
    if decays:
        grad = grad.addcmul(param, weight_decay)  # grad + weight_decay * param, as SGD's add(alpha=)
    buffer.mul_(momentum).add_(grad)
    direction = grad.addcmul(buffer, momentum) if nesterov else buffer
    param.addcmul_(direction, lr, value=-1)  # param - lr * direction, as SGD's add_(alpha=-lr)


def step_lr(config: TrainConfig, epoch: int) -> float:
    """The learning rate of epoch `epoch` (from 0) under StepLR: the initial rate times gamma
    once every `step_size` epochs, multiplied in turn as `torch.optim.lr_scheduler.StepLR`
    chains it, so the values are its own to the last bit."""
    lr = config.lr
    for e in range(1, epoch + 1):
        if e % config.step_size == 0:
            lr = lr * config.gamma
    return lr
