"""An epoch's steps eager, static and graphed (lenet/steps.py), checked on the CPU: the static
step and a graph's host logic (with captures that stand in for CUDA's) give the eager loop's
curves to the last bit, and a capture that fails or replays wrongly leaves the step eager."""

import dataclasses
import math

import pytest
import torch

from lenet.config import TrainConfig
from lenet.device import policy_for
from lenet.step import Stepper
from lenet.steps import EagerSteps, GraphedSteps, StaticSteps, make_steps
from lenet.syncs import HostReads
from lenet.train import train
from lenet.update import step_lr

# 1,600 training images at batch 96: 16 full batches and a partial one of 64 each epoch.
CONFIG = TrainConfig(lr=0.05, momentum=0.9, batch_size=96, step_size=1, gamma=0.5, max_epochs=2, seed=3)


def _drive(make, data, config=CONFIG, epochs=2):
    """Train like the loop: a permutation per epoch, StepLR's rate, every step; returns the
    stepper and the (loss, accuracy) averages after each epoch."""
    policy = policy_for(data.device)
    stepper = Stepper(config, data, policy)
    generator = policy.generator(config.seed)
    n = len(data.train_x)
    steps = make(stepper, n, generator)
    averages = []
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=generator)
        stepper.update.set_lr(step_lr(config, epoch))
        steps.begin_epoch(perm)
        for i in range(math.ceil(n / config.batch_size)):
            steps.step(i)
        averages.append(stepper.take_averages())
    return stepper, steps, averages


def _eager(stepper, n, generator):
    return EagerSteps(stepper, stepper.config.batch_size, generator)


def _same(a, b):
    (stepper_a, _, averages_a), (stepper_b, _, averages_b) = a, b
    assert averages_a == averages_b
    assert torch.equal(stepper_a.params, stepper_b.params)
    assert torch.equal(stepper_a.update.buffer, stepper_b.update.buffer)


def test_the_static_step_run_eagerly_is_the_eager_loop_to_the_last_bit(synthetic_data):
    static = _drive(lambda s, n, g: StaticSteps(s, n, s.config.batch_size, g), synthetic_data)
    assert static[1].partial_size == 64 and static[1].steps_per_epoch == 17
    _same(_drive(_eager, synthetic_data), static)


class _Captures:
    """Stands in for CUDA's capture: counts captures; the replay runs the step's device work
    (`warm_up` times first, as capture_cuda's warm-up does, and `broken`: a replay that does
    nothing)."""

    def __init__(self, warm_up=3, broken=False, fails=False):
        self.count, self.warm_up, self.broken, self.fails = 0, warm_up, broken, fails

    def __call__(self, step):
        self.count += 1
        if self.fails:
            raise RuntimeError("operation not permitted when stream is capturing")
        for _ in range(self.warm_up):
            step()
        return (lambda: None) if self.broken else step


def _graphed(captures):
    return lambda s, n, g: GraphedSteps(s, n, s.config.batch_size, g, captures)


def test_a_graphed_run_captures_each_kind_of_step_once_and_gives_the_eager_curves(synthetic_data):
    captures = _Captures()
    graphed = _drive(_graphed(captures), synthetic_data)
    assert captures.count == 2  # the full step and the partial last step, over two epochs
    assert all(replay is not None for replay in graphed[1].replays.values())
    _same(_drive(_eager, synthetic_data), graphed)


@pytest.mark.parametrize("trouble", ["broken", "fails"])
def test_a_capture_that_fails_or_replays_wrongly_leaves_the_step_eager_with_a_warning(synthetic_data, trouble):
    with pytest.warns(UserWarning, match="runs eagerly") as caught:
        graphed = _drive(_graphed(_Captures(**{trouble: True})), synthetic_data)
    assert len(caught) == 2 and graphed[1].replays == {False: None, True: None}
    _same(_drive(_eager, synthetic_data), graphed)


def test_a_graphed_step_reads_nothing_back_on_the_host(synthetic_data):
    stepper, steps, _ = _drive(_graphed(_Captures()), synthetic_data, epochs=1)  # captured
    steps.begin_epoch(torch.randperm(len(synthetic_data.train_x)))
    with HostReads() as reads:
        for i in range(steps.steps_per_epoch):
            steps.step(i)
    assert reads.found == []


def test_graphs_are_the_policys_choice_and_never_with_augmentation(synthetic_data):
    policy = policy_for(synthetic_data.device)
    assert not policy.graph_steps and policy_for("cuda").graph_steps  # eager on the CPU, graphs on a card
    generator = policy.generator(0)
    plain = Stepper(CONFIG, synthetic_data, policy)
    augmented = Stepper(dataclasses.replace(CONFIG, augment=True), synthetic_data, policy)
    assert isinstance(make_steps(plain, 1600, generator, graphs=True, capture=_Captures()), GraphedSteps)
    assert isinstance(make_steps(plain, 1600, generator, graphs=False), EagerSteps)
    assert isinstance(make_steps(augmented, 1600, generator, graphs=True, capture=_Captures()), EagerSteps)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback where CUDA cannot capture")
def test_a_run_told_to_graph_where_cuda_cannot_capture_trains_eagerly_with_the_same_curve(synthetic_data):
    graphing = dataclasses.replace(policy_for(synthetic_data.device), graph_steps=True)
    with pytest.warns(UserWarning, match="runs eagerly: capturing it failed"):
        told = train(CONFIG, synthetic_data, threads=1, policy=graphing)
    plain = train(CONFIG, synthetic_data, threads=1)
    assert [r.val_accuracy for r in told.history] == [r.val_accuracy for r in plain.history]
    assert [r.train_loss for r in told.history] == [r.train_loss for r in plain.history]
