"""The step clock: measured per batch size with the loop's own step, and what a run's steps cost."""

import math

import pytest

from lenet.clock import StepClock, StepCost, calibrate_clock
from lenet.config import TrainConfig
from lenet.errors import InputError
from lenet.train import train


def _clock(partial=0.5):
    costs = {"100": StepCost(full=1.0, partial=partial, partial_size=50, spread=0.0)}
    return StepClock("cpu", 2, 1050, costs, rounds=3)  # 11 steps an epoch: 10 full, 1 of 50 images


def test_the_clock_prices_full_and_partial_steps():
    clock = _clock()
    assert clock.seconds_for(100, False, 5) == 5.0
    assert clock.seconds_for(100, False, 11) == 10.5  # one epoch: its last batch is partial
    assert clock.seconds_for(100, False, 27) == 25 + 2 * 0.5  # two epochs and five steps
    with pytest.raises(InputError, match="no cost for batch size 64"):
        clock.seconds_for(64, False, 1)
    assert StepClock.from_dict(clock.to_dict()) == clock
    with pytest.raises(InputError, match="not a step clock"):
        StepClock.from_dict({"costs": {}})


def test_calibration_measures_every_batch_size_and_the_partial_batch(synthetic_data):
    # 1,600 training images: 64 divides them (no partial batch), 96 leaves 64.
    clock = calibrate_clock(synthetic_data, [64, 96], rounds=3, block_seconds=0.02)
    assert set(clock.costs) == {"64", "96"} and clock.rounds == 3 and clock.train_size == 1600
    assert clock.costs["64"].partial is None and clock.costs["96"].partial_size == 64
    assert all(c.full > 0 and math.isfinite(c.full) for c in clock.costs.values())
    assert clock.costs["96"].partial > 0
    assert clock.covers([64, 128], [False]) == ["128"]
    # What the clock says a run cost and what it took are of one order (same code, same machine).
    run = train(TrainConfig(batch_size=96, max_epochs=1), synthetic_data)
    priced = clock.seconds_for(96, False, run.history[-1].step)
    assert 0.2 < run.train_seconds / priced < 5
