"""The hand-written SGD update (lenet/update.py) against torch.optim.SGD, and StepLR's rates."""

import pytest
import torch
from torch import nn

from lenet.config import TrainConfig
from lenet.update import SgdUpdate, step_lr


def _pair(momentum, weight_decay, nesterov, n=62006, dtype=torch.float32):
    torch.manual_seed(0)
    start = torch.randn(n, dtype=dtype)
    ours, theirs = nn.Parameter(start.clone()), nn.Parameter(start.clone())
    update = SgdUpdate(ours, 0.05, momentum, weight_decay, nesterov)
    sgd = torch.optim.SGD([theirs], lr=0.05, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
    return ours, update, theirs, sgd


@pytest.mark.parametrize(
    ("momentum", "weight_decay", "nesterov"),
    [(0.9, 0.0, False), (0.53, 0.0, False), (0.9, 5e-4, False), (0.9, 5e-4, True), (0.0, 0.0, False)],
)
def test_the_update_is_bitwise_torch_sgd_over_many_steps_and_rate_changes(momentum, weight_decay, nesterov):
    ours, update, theirs, sgd = _pair(momentum, weight_decay, nesterov)
    gen = torch.Generator().manual_seed(1)
    for step in range(60):
        if step and step % 20 == 0:  # a StepLR decay: both take the same new rate
            lr = sgd.param_groups[0]["lr"] * 0.3
            sgd.param_groups[0]["lr"] = lr
            update.set_lr(lr)
        grad = torch.randn(ours.shape, generator=gen) * 1e-2
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        update.step()
        sgd.step()
        assert torch.equal(ours, theirs), f"step {step}: {(ours != theirs).sum().item()} elements differ"
    if momentum:  # SGD keeps no buffer without momentum
        assert torch.equal(update.buffer, sgd.state[theirs]["momentum_buffer"])


def test_the_hyperparameters_are_device_tensors_and_a_rate_change_is_a_fill():
    param = nn.Parameter(torch.ones(4))
    update = SgdUpdate(param, 0.1, 0.9, 0.0, False)
    held = update.lr
    update.set_lr(0.03)
    assert update.lr is held and update.lr.item() == pytest.approx(0.03)  # the same tensor: a graph keeps reading it
    assert {t.device for t in (update.lr, update.momentum, update.weight_decay)} == {param.device}
    param.grad = torch.ones(4)
    update.step()
    assert torch.allclose(param, torch.full((4,), 1 - 0.03))


@pytest.mark.parametrize(("step_size", "gamma"), [(4, 0.3), (1, 0.5), (3, 0.179), (30, 0.9)])
def test_step_lr_gives_steplrs_rates_to_the_last_bit(step_size, gamma):
    config = TrainConfig(lr=0.0469, step_size=step_size, gamma=gamma)
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    for epoch in range(30):
        assert step_lr(config, epoch) == optimizer.param_groups[0]["lr"], f"epoch {epoch}"
        optimizer.step()
        scheduler.step()
