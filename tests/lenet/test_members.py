"""Trials as members of populations (lenet/members.py), driven as solo runs are, on the synthetic
data: whichever trials share a population and whenever they join, each trains the same curve."""

import dataclasses
import math

from lenet.members import MemberRun, PopulationPool
from lenet.population import PopulationRun
from lenet.train import TrainingRun, train
from tests.lenet.test_population import CONFIGS, _curves, _follows

A, B, C = CONFIGS
D = dataclasses.replace(C, lr=0.02, momentum=0.7, seed=4, max_epochs=2)


def _key(records):
    return [(r.epoch, r.step, r.train_loss, r.val_loss, r.val_accuracy) for r in records]


def _alone(config, data, slots=3):
    """`config`'s curve as the only member of a population `slots` wide."""
    return _curves(PopulationRun([config] + [None] * (slots - 1), data))[0]


def _drain(run):
    while run.advance() is not None:
        pass
    return run.history


def test_a_member_trains_the_same_curve_whoever_shares_its_population_and_whenever_it_joins(synthetic_data):
    pool = PopulationPool(synthetic_data, 3)
    a, b = pool.run(A), pool.run(B)
    assert isinstance(a, MemberRun)
    first = a.advance()  # a's half epoch: b has not joined yet
    assert first.epoch == 0.52 and b.population is None
    b_first = b.advance()  # b waits for the epoch's end, training a on meanwhile
    assert b_first.epoch == 0.52 and len(a.records) == 2  # a's end of epoch 1 and half of epoch 2, untaken
    c = pool.run(C)
    for run in (a, b, c):
        _drain(run)
    assert len(pool.populations) == 1  # one population, three members
    for run, config in ((a, A), (b, B), (c, C)):
        assert _key(run.history) == _key(_alone(config, synthetic_data)), config
        assert run.status == "completed" and run.reason == f"trained all {config.max_epochs} epochs"
    _follows(a.history, train(A, synthetic_data, threads=1))


def test_a_stopped_members_slot_takes_the_next_trial_at_the_boundary_and_more_members_get_another_population(
    synthetic_data,
):
    pool = PopulationPool(synthetic_data, 2)
    a, b = pool.run(A), pool.run(B)
    a.advance()
    b.advance()
    a.stop("pruned")
    assert a.status == "stopped" and a.reason == "pruned" and a.advance() is None and not a.records
    d = pool.run(D)
    d.advance()  # a's slot, from the epoch's end on
    c = pool.run(C)
    c.advance()  # both slots taken: a second population
    for run in (b, c, d):
        _drain(run)
    assert len(pool.populations) == 2
    assert pool.populations[0].run.members[0].config is D
    for run, config in ((b, B), (c, C), (d, D)):
        assert _key(run.history) == _key(_alone(config, synthetic_data, slots=2))
    assert len(a.history) == 1


def test_a_diverging_member_ends_as_a_solo_run_does_and_the_others_go_on(synthetic_data):
    blowing = dataclasses.replace(B, lr=1e4)
    pool = PopulationPool(synthetic_data, 2)
    a, bad = pool.run(A), pool.run(blowing)
    solo = TrainingRun(blowing, synthetic_data, threads=1)
    _drain(solo)
    _drain(bad)
    assert bad.status == solo.status == "diverged" and "training loss became" in bad.reason
    assert len(bad.history) == len(solo.history) and not math.isfinite(bad.history[-1].train_loss)
    assert _key(_drain(a)) == _key(_alone(A, synthetic_data, slots=2))


def test_a_member_left_alone_by_a_divergence_within_an_epoch_lets_the_next_join(synthetic_data):
    pool = PopulationPool(synthetic_data, 1)
    bad = pool.run(dataclasses.replace(B, lr=1e4))
    _drain(bad)
    assert bad.status == "diverged"
    d = pool.run(D)
    assert _key(_drain(d)) == _key(_alone(D, synthetic_data, slots=1))
    assert len(pool.populations) == 1


def test_a_config_that_cannot_share_trains_alone(synthetic_data):
    pool = PopulationPool(synthetic_data, 2)
    assert isinstance(pool.run(dataclasses.replace(A, augment=True)), TrainingRun)
    assert not pool.populations


def test_members_seated_one_after_another_start_together_and_train_as_they_would_alone(synthetic_data):
    pool = PopulationPool(synthetic_data, 3)
    a, b = pool.run(A), pool.run(B)
    pool.seat(a)
    pool.seat(b)  # the population has not trained yet: b starts with a, not an epoch after
    assert a.population is b.population and len(pool.populations) == 1
    assert a.advance().epoch == b.advance().epoch == 0.52 and not a.records and not b.records
    c = pool.run(C)
    pool.seat(c)  # mid-epoch: a population of its own, not the epoch's end of a and b's
    assert c.population is not a.population and len(pool.populations) == 2
    for run, config in ((a, A), (b, B), (c, C)):
        assert _key(_drain(run)) == _key(_alone(config, synthetic_data)), config
