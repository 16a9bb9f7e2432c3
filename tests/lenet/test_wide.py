"""A population as one model (lenet/wide.py) against K separate LeNet-5s, in float64 so that
only rounding separates them; per-member SGD (lenet/update.py) against solo runs; members that
never mix (a diverged member, a refilled slot)."""

import pytest
import torch
from torch import nn

from lenet.flat import flatten_parameters
from lenet.model import LeNet5
from lenet.update import MemberSgdUpdate, SgdUpdate
from lenet.wide import WideLeNet5, gather_batches, members_loss, owners_of

K, B, N = 4, 8, 64


def _models(k=K, seed=0):
    models = []
    for i in range(k):
        torch.manual_seed(seed + i)
        models.append(LeNet5().double())
    return models


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(N, 3, 32, 32, generator=g, dtype=torch.float64), torch.randint(0, 10, (N,), generator=g)


def _batches(step, k=K):
    g = torch.Generator().manual_seed(100 + step)
    return torch.stack([torch.randperm(N, generator=g)[:B] for _ in range(k)])  # (K, B): each member its own batch


def test_a_member_comes_back_as_the_lenet_it_was_made_of():
    models = _models()
    wide = WideLeNet5.of(models)
    for k, model in enumerate(models):
        back = wide.member(k)
        assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))


def test_the_gather_puts_member_ks_batch_in_its_channels():
    marked = torch.arange(N, dtype=torch.float64).view(N, 1, 1, 1).expand(N, 3, 32, 32).contiguous()
    idx = _batches(0)
    x = gather_batches(marked, idx)
    assert x.shape == (B, 3 * K, 32, 32)
    for k in range(K):
        for b in range(B):
            assert torch.all(x[b, 3 * k : 3 * k + 3] == idx[k, b])


def test_the_wide_model_computes_the_k_models_logits_and_gradients():
    models, (x, y) = _models(), _data()
    wide = WideLeNet5.of(models)
    idx = _batches(0)
    logits = wide(gather_batches(x, idx))
    members_loss(logits, y[idx]).backward()
    for k, model in enumerate(models):
        solo = model(x[idx[k]])
        assert torch.allclose(logits[k], solo, rtol=0, atol=1e-12)
        nn.functional.cross_entropy(solo, y[idx[k]]).backward()
    for k, model in enumerate(models):
        assert torch.allclose(wide.conv1.weight.grad[6 * k : 6 * k + 6], model.conv1.weight.grad, rtol=0, atol=1e-12)
        assert torch.allclose(wide.fc2_weight.grad[k], model.fc2.weight.grad, rtol=0, atol=1e-12)


# Each member its own rate, momentum and weight decay; member 2 decays its rate at step 25.
RATES = {"lr": [0.05, 0.01, 0.1, 0.03], "momentum": [0.9, 0.5, 0.8, 0.95], "weight_decay": [0.0, 5e-4, 0.0, 1e-3]}


def _population(models):
    wide = WideLeNet5.of(models)
    flat = flatten_parameters(wide)
    return wide, MemberSgdUpdate(flat, owners_of(wide, flat), **RATES, nesterov=False)


def _train_population(wide, update, x, y, steps, start=0, at_step=None):
    for step in range(start, start + steps):
        if at_step is not None:
            at_step(step, wide, update)
        idx = _batches(step)
        update.param.grad.zero_()
        members_loss(wide(gather_batches(x, idx)), y[idx]).backward()
        update.step()


def _decay_member_2(step, wide, update):
    if step == 25:
        update.set_member(2, lr=0.1 * 0.3)


def test_members_follow_their_solo_runs_with_their_own_schedules_over_50_steps():
    models, (x, y) = _models(), _data()
    wide, update = _population(models)  # copies of the models' weights: the solo runs below start alike
    _train_population(wide, update, x, y, 50, at_step=_decay_member_2)
    for k, model in enumerate(models):
        flat = flatten_parameters(model)
        solo = SgdUpdate(flat, RATES["lr"][k], RATES["momentum"][k], RATES["weight_decay"][k], nesterov=False)
        for step in range(50):
            if k == 2 and step == 25:
                solo.set_lr(0.1 * 0.3)
            idx = _batches(step)[k]
            flat.grad.zero_()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            solo.step()
        member = torch.cat([p.detach().flatten() for p in wide.member(k).parameters()])
        alone = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert torch.allclose(member, alone, rtol=0, atol=1e-9), f"member {k}: {(member - alone).abs().max():.3g}"


def _members(wide, ks):
    return [torch.cat([p.detach().flatten() for p in wide.member(k).parameters()]) for k in ks]


def test_a_diverged_member_leaves_the_others_bit_for_bit_alone():
    (x, y) = _data()
    healthy, healthy_update = _population(_models())
    broken, broken_update = _population(_models())
    broken_update.set_member(1, lr=1e6)  # member 1 blows up to inf and NaN within a few steps
    _train_population(healthy, healthy_update, x, y, 10)
    _train_population(broken, broken_update, x, y, 10)
    assert not torch.isfinite(_members(broken, [1])[0]).all()
    for a, b in zip(_members(healthy, [0, 2, 3]), _members(broken, [0, 2, 3])):
        assert torch.equal(a, b)


def test_a_refilled_slot_starts_its_new_trial_afresh_and_the_others_go_on_untouched():
    (x, y) = _data()
    kept, kept_update = _population(_models())
    refilled, refilled_update = _population(_models())
    _train_population(kept, kept_update, x, y, 5)
    _train_population(refilled, refilled_update, x, y, 5)
    newcomer = _models(1, seed=50)[0]
    refilled.load_member(3, newcomer)
    refilled_update.reset_member(3)
    refilled_update.set_member(3, lr=0.02, momentum=0.7, weight_decay=0.0)
    _train_population(kept, kept_update, x, y, 5, start=5)
    _train_population(refilled, refilled_update, x, y, 5, start=5)
    for a, b in zip(_members(kept, [0, 1, 2]), _members(refilled, [0, 1, 2])):
        assert torch.equal(a, b)
    # Member 3 is the newcomer's solo run from step 5 on: a fresh momentum, its own rates.
    flat = flatten_parameters(newcomer)
    solo = SgdUpdate(flat, 0.02, 0.7, 0.0, nesterov=False)
    for step in range(5, 10):
        idx = _batches(step)[3]
        flat.grad.zero_()
        nn.functional.cross_entropy(newcomer(x[idx]), y[idx]).backward()
        solo.step()
    (member,) = _members(refilled, [3])
    assert torch.allclose(member, torch.cat([p.detach().flatten() for p in newcomer.parameters()]), rtol=0, atol=1e-9)


@pytest.mark.parametrize("k", [1, 3])
def test_the_owners_of_the_flat_buffer_follow_each_parameters_layout(k):
    wide = WideLeNet5(k).double()
    flat = flatten_parameters(wide)
    owners = owners_of(wide, flat)
    assert owners.shape == flat.shape and set(owners.tolist()) == set(range(k))
    for p in wide.parameters():  # each member owns the same number of each parameter's elements
        view = owners.as_strided(p.shape, p.stride(), p.storage_offset())
        assert torch.equal(torch.bincount(view.flatten(), minlength=k), torch.full((k,), p.numel() // k))
        assert view.flatten()[0] == 0 and view.flatten()[-1] == k - 1
