"""The training loop on learnable synthetic data: it learns, is reproducible, reports, stops."""

import math

import pytest
import torch

from lenet.config import TrainConfig
from lenet.curve import EvalRecord, first_crossing
from lenet.step import evaluate
from lenet.train import TrainingRun, train

FAST = dict(batch_size=64, lr=0.01, momentum=0.9, step_size=3, gamma=0.5, max_epochs=4)


def test_learns_well_above_chance(synthetic_data):
    result = train(TrainConfig(**FAST), synthetic_data, threads=2)
    assert result.status == "completed"
    assert len(result.history) == 4
    assert result.history[-1].val_accuracy > 0.8  # chance is 0.1
    _, test_acc = evaluate(result.model, synthetic_data.test_x, synthetic_data.test_y)
    assert test_acc > 0.8


def test_same_seed_same_history_on_cpu(synthetic_data):
    timing = {"train_seconds", "wall_seconds"}

    def curve(seed):
        return [
            {k: v for k, v in r.to_dict().items() if k not in timing}
            for r in train(TrainConfig(**{**FAST, "max_epochs": 2, "seed": seed}), synthetic_data).history
        ]

    assert curve(1) == curve(1)
    assert curve(1) != curve(2)


def test_history_fields_are_consistent(synthetic_data):
    cfg = TrainConfig(**{**FAST, "max_epochs": 5, "step_size": 2, "gamma": 0.1, "evals_per_epoch": 2})
    h = train(cfg, synthetic_data).history
    assert len(h) == 10
    assert [r.epoch for r in h] == pytest.approx([0.5 * (k + 1) for k in range(10)], abs=0.03)
    steps_per_epoch = math.ceil(1600 / 64)
    assert h[1].step == steps_per_epoch and h[-1].step == 5 * steps_per_epoch
    assert h[-1].images == 5 * 1600
    # StepLR per epoch: 0.01 for epochs 1-2, 0.001 for 3-4, 0.0001 for 5
    assert [round(r.lr, 6) for r in h[1::2]] == [0.01, 0.01, 0.001, 0.001, 0.0001]
    # training time excludes evaluation, so it grows no faster than wall time
    assert all(a.train_seconds < b.train_seconds for a, b in zip(h, h[1:]))
    assert all(r.train_seconds <= r.wall_seconds for r in h)


def test_evaluating_more_often_does_not_change_training(synthetic_data):
    # A replay thins a curve evaluated 4 times an epoch to what a run evaluated twice records
    # (search/pruning/replay.py): the points both runs take must be the same to the last digit.
    # The training loss and accuracy are means since the previous evaluation, so they differ.
    kept = {"epoch", "step", "images", "lr", "val_loss", "val_accuracy"}

    def curve(evals: int) -> list[dict[str, float]]:
        cfg = TrainConfig(**{**FAST, "max_epochs": 2, "evals_per_epoch": evals, "seed": 3})
        return [{k: v for k, v in r.to_dict().items() if k in kept} for r in train(cfg, synthetic_data).history]

    four, two = curve(4), curve(2)
    assert len(four) == 8 and four[1::2] == two


def test_a_paused_run_goes_on_as_if_it_never_paused(synthetic_data):
    # The confirmation race leaves a capped run suspended while it trains others, and may
    # continue it later: the curve must be the one an uninterrupted run draws.
    timing = {"train_seconds", "wall_seconds"}
    cfg = TrainConfig(**{**FAST, "max_epochs": 3, "evals_per_epoch": 2, "seed": 4})
    straight = [{k: v for k, v in r.to_dict().items() if k not in timing} for r in train(cfg, synthetic_data).history]
    paused = TrainingRun(cfg, synthetic_data)
    for _ in range(3):
        paused.advance()
    assert paused.status == "running" and paused.result().status == "running"  # a suspended run says so
    between = train(TrainConfig(**{**FAST, "max_epochs": 1, "seed": 9}), synthetic_data)  # other work meanwhile
    assert between.status == "completed"
    while paused.advance() is not None:
        assert paused.status == "running"
    resumed = [{k: v for k, v in r.to_dict().items() if k not in timing} for r in paused.history]
    assert resumed == straight and len(resumed) == 6
    assert paused.advance() is None and paused.result().status == "completed"
    # The pause counts on neither clock: the run's seconds are its own steps' and evaluations'.
    assert paused.history[-1].wall_seconds < paused.history[-1].train_seconds + between.history[-1].wall_seconds


def test_callback_can_stop_with_a_reason(synthetic_data):
    seen: list[EvalRecord] = []

    def stop_at_two(record):
        seen.append(record)
        return "enough" if record.epoch >= 2 else None

    result = train(TrainConfig(**FAST), synthetic_data, on_eval=stop_at_two)
    assert result.status == "stopped" and result.reason == "enough"
    assert len(result.history) == 2 and seen == result.history


def test_divergence_is_an_outcome_not_an_exception(synthetic_data):
    result = train(TrainConfig(**{**FAST, "lr": 1e8, "momentum": 0.0}), synthetic_data)
    assert result.status == "diverged"
    assert "loss became" in result.reason
    assert len(result.history) == 1


def test_augmentation_path_trains(synthetic_data):
    result = train(TrainConfig(**{**FAST, "augment": True}), synthetic_data)
    assert result.history[-1].val_accuracy > 0.5


def test_the_first_evaluation_at_the_target(synthetic_data):
    result = train(TrainConfig(**FAST), synthetic_data)
    reached = first_crossing(result.history, 0.5).after
    assert reached is not None and reached.val_accuracy >= 0.5
    assert all(r.val_accuracy < 0.5 for r in result.history[: result.history.index(reached)])
    assert first_crossing(result.history, 1.01) is None


def test_thread_count_is_applied(synthetic_data):
    before = torch.get_num_threads()
    try:
        assert train(TrainConfig(**{**FAST, "max_epochs": 1}), synthetic_data, threads=1).threads == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("lr", -0.1, "lr must be a positive number"),
        ("lr", float("nan"), "lr must be a positive number"),
        ("momentum", 1.0, "momentum must be in"),
        ("step_size", 0, "step_size must be at least 1"),
        ("gamma", 0.0, "gamma must be in"),
        ("batch_size", 0, "batch_size must be at least 1"),
        ("max_epochs", 0, "max_epochs must be at least 1"),
    ],
)
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_config_from_dict_checks_names_and_types():
    cfg = TrainConfig(lr=0.01, batch_size=256)
    assert TrainConfig.from_dict(cfg.to_dict(), require_all=True) == cfg
    assert TrainConfig.from_dict({"batch_size": 512.0}).batch_size == 512
    with pytest.raises(ValueError, match="unknown training config field"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    with pytest.raises(ValueError, match="must be an integer"):
        TrainConfig.from_dict({"batch_size": "big"})
    with pytest.raises(ValueError, match="must be true or false"):
        TrainConfig.from_dict({"augment": "yes"})
    with pytest.raises(ValueError, match="lacks field"):
        TrainConfig.from_dict({"lr": 0.1}, require_all=True)
