"""No hidden host synchronisation in a training step (lenet/syncs.py), and the step's buffers
stay where they are: what a CUDA graph of the step needs, checked on the CPU."""

import pytest
import torch

from lenet.config import TrainConfig
from lenet.device import policy_for
from lenet.step import Stepper
from lenet.syncs import HostReads


def test_the_lint_sees_a_value_read_back_and_a_value_dependent_shape():
    x = torch.arange(6.0)
    with HostReads() as reads:
        x.sum().item()
        (x > 2).nonzero()
        torch.equal(x, x)
        x.mul(2)  # device work only
    assert reads.found == ["aten._local_scalar_dense.default", "aten.nonzero.default", "aten.equal.default"]


@pytest.mark.parametrize("augment", [False, True])
def test_a_training_step_never_waits_for_the_device(synthetic_data, augment):
    config = TrainConfig(batch_size=16, augment=augment, weight_decay=5e-4)
    stepper = Stepper(config, synthetic_data, policy_for(synthetic_data.device))
    generator = torch.Generator().manual_seed(0)
    idx = torch.arange(16)
    with HostReads() as reads:
        for _ in range(3):
            stepper(idx, generator)
        stepper.update.set_lr(0.01)  # StepLR's change, once an epoch
    assert reads.found == []
    with HostReads() as reads:
        stepper.take_averages()  # at an evaluation, by design: its two sums read back
    assert reads.found == ["aten._local_scalar_dense.default"] * 2


def test_the_steps_state_stays_at_the_same_addresses(synthetic_data):
    # A graph replays on the memory it was captured with: parameters, gradients, the momentum
    # buffer, the rates and the sums must be updated in place, never rebound.
    stepper = Stepper(TrainConfig(batch_size=16), synthetic_data, policy_for(synthetic_data.device))
    state = (
        stepper.params,
        stepper.params.grad,
        stepper.update.buffer,
        stepper.update.lr,
        stepper.update.momentum,
        stepper.loss_sum,
        stepper.correct,
    )
    before = [t.data_ptr() for t in state]
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        stepper(torch.arange(16), generator)
    stepper.update.set_lr(0.02)
    stepper.take_averages()
    assert [t.data_ptr() for t in state] == before
    assert stepper.params.grad.data_ptr() == before[1] and stepper.update.buffer.abs().sum() > 0
