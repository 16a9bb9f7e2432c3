"""A population's training (lenet/population.py) on the synthetic data: members follow their
solo runs, end on their own budgets, stop, diverge and are replaced without touching the others."""

import dataclasses

import pytest

from lenet.config import TrainConfig
from lenet.device import policy_for
from lenet.errors import ConfigError
from lenet.population import PopulationRun
from lenet.train import train

# One batch size and evaluation rhythm; each member its own rate, momentum, schedule, seed, budget.
CONFIGS = [
    TrainConfig(lr=0.05, momentum=0.9, batch_size=64, step_size=1, gamma=0.5, max_epochs=3, evals_per_epoch=2, seed=1),
    TrainConfig(lr=0.01, momentum=0.5, batch_size=64, step_size=2, gamma=0.3, max_epochs=2, evals_per_epoch=2, seed=2),
    TrainConfig(lr=0.03, momentum=0.8, batch_size=64, step_size=1, gamma=0.9, max_epochs=3, evals_per_epoch=2, seed=3),
]


def _curves(run, on_records=None):
    curves = {slot: [] for slot in range(run.slots)}
    while records := run.advance():
        for slot, record in records.items():
            curves[slot].append(record)
        if on_records is not None:
            on_records(run, records)
    return curves


def _follows(member, solo, evaluations=None):
    """A member's curve against its solo run's: the same steps, images and rates; losses and
    accuracies apart only by the kernels' rounding (grouped against dense convolutions)."""
    assert len(member) == len(solo.history)
    for a, b in list(zip(member, solo.history))[:evaluations]:
        assert (a.epoch, a.step, a.images, a.lr) == (b.epoch, b.step, b.images, b.lr)
        # Relative to the loss, with a floor: near zero (a learned synthetic set) the same rounding
        # gap is a larger share (1.1e-4 of a loss of 8.4e-5 on an Intel Xeon with AVX-512 and AMX).
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-4, abs=1e-6)
        assert a.val_accuracy == pytest.approx(b.val_accuracy, abs=0.01)


def test_members_train_as_their_solo_runs_each_to_its_own_budget(synthetic_data):
    run = PopulationRun(CONFIGS, synthetic_data)
    curves = _curves(run)
    assert [m.status for m in run.members] == ["completed"] * 3
    assert [len(c) for c in curves.values()] == [6, 4, 6]  # member 1's budget is 2 epochs
    for slot, config in enumerate(CONFIGS):
        _follows(curves[slot], train(config, synthetic_data, threads=1))
    assert curves[0][-1].val_accuracy > 0.9  # the data are learnable


def _bitwise(a, b):
    assert [(r.train_loss, r.val_loss, r.val_accuracy) for r in a] == [
        (r.train_loss, r.val_loss, r.val_accuracy) for r in b
    ]


def test_a_stopped_members_slot_takes_the_next_trial_at_the_epoch_boundary_and_the_others_never_notice(synthetic_data):
    newcomer = dataclasses.replace(CONFIGS[1], lr=0.04, momentum=0.85, seed=9, max_epochs=1)

    def replace_member_1(run, records):
        if run.members[1].status == "running" and run.members[1].config is CONFIGS[1]:
            run.stop(1, "pruned at its first evaluation")
            with pytest.raises(RuntimeError, match="epoch boundary"):
                run.refill(1, newcomer)
        elif run.at_epoch_boundary and run.members[1].config is CONFIGS[1]:
            run.refill(1, newcomer)

    plain = _curves(PopulationRun(CONFIGS, synthetic_data))
    run = PopulationRun(CONFIGS, synthetic_data)
    curves = _curves(run, replace_member_1)
    _bitwise(curves[0], plain[0])
    _bitwise(curves[2], plain[2])
    assert run.members[1].config is newcomer and run.members[1].status == "completed"
    # Slot 1's curve: the first trial's one evaluation, then the newcomer's epoch from its start.
    _bitwise(curves[1][:1], plain[1][:1])
    assert [r.epoch for r in curves[1][1:]] == [0.52, 1.0]
    _follows(curves[1][1:], train(newcomer, synthetic_data, threads=1))


def test_a_diverging_member_ends_alone(synthetic_data):
    blowing = [CONFIGS[0], dataclasses.replace(CONFIGS[1], lr=1e4), CONFIGS[2]]
    run = PopulationRun(blowing, synthetic_data)
    curves = _curves(run)
    plain = _curves(PopulationRun(CONFIGS, synthetic_data))
    assert run.members[1].status == "diverged" and "training loss became" in run.members[1].reason
    _bitwise(curves[0], plain[0])
    _bitwise(curves[2], plain[2])


def test_a_population_with_every_member_stopped_waits_for_a_refill(synthetic_data):
    run = PopulationRun([CONFIGS[0], None], synthetic_data)
    assert run.running() == [0]
    first = run.advance()
    run.stop(0, "pruned")
    assert run.advance() == {} and run.at_epoch_boundary  # nothing runs: the epoch need not end
    run.refill(1, CONFIGS[2])
    records = run.advance()
    assert list(records) == [1] and records[1].epoch == pytest.approx(0.52) and 0 in first


def test_members_must_share_the_batch_size_and_evaluations(synthetic_data):
    with pytest.raises(ConfigError, match="share one batch size"):
        PopulationRun([CONFIGS[0], dataclasses.replace(CONFIGS[1], batch_size=128)], synthetic_data)
    with pytest.raises(ConfigError, match="share one batch size"):
        PopulationRun([CONFIGS[0], dataclasses.replace(CONFIGS[1], augment=True)], synthetic_data)
    with pytest.raises(ConfigError, match="at least one member"):
        PopulationRun([None, None], synthetic_data)


def test_a_graphed_population_gives_the_eager_populations_curves(synthetic_data):
    # The population's step replayed from graphs (captures standing in for CUDA's, which run the
    # step itself) against the eager population: bit for bit, each kind of step captured once.
    captured = []

    def capture(step):
        captured.append(step)
        for _ in range(3):  # capture_cuda's warm-up trains: the run must undo it
            step()
        return step

    graphing = dataclasses.replace(policy_for(synthetic_data.device), graph_steps=True)
    configs = [dataclasses.replace(c, batch_size=96) for c in CONFIGS]  # 1,600 images: a partial batch of 64
    graphed = PopulationRun(configs, synthetic_data, policy=graphing, capture=capture)
    curves = _curves(graphed)
    plain = _curves(PopulationRun(configs, synthetic_data))
    assert len(captured) == 2 and all(r is not None for r in graphed.steps.replays.values())
    for slot in range(3):
        _bitwise(curves[slot], plain[slot])
