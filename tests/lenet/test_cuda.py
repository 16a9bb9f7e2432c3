"""What only a CUDA card can show: the device policy's choices hold on real hardware.

Skipped without CUDA (CI has none); run on a lent GPU by benchmarks/gpu_check.sh."""

from __future__ import annotations

import dataclasses
import warnings

import pytest
import torch
from torch import nn

from lenet.clock import calibrate_clock
from lenet.config import TrainConfig
from lenet.data import load_dataset
from lenet.device import is_out_of_memory, policy_for
from lenet.step import Stepper, evaluate
from lenet.steps import make_steps
from lenet.train import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

FAST = dict(batch_size=64, lr=0.01, momentum=0.9, step_size=3, gamma=0.5, max_epochs=4)


@pytest.fixture(scope="module")
def cuda_data(synthetic_archive, tmp_path_factory):
    return load_dataset(synthetic_archive, "cuda", val_size=400, cache_dir=tmp_path_factory.mktemp("cache-cuda"))


def test_training_on_cuda_learns_like_the_cpu(cuda_data, synthetic_data):
    on_cuda = train(TrainConfig(**FAST), cuda_data)
    on_cpu = train(TrainConfig(**FAST), synthetic_data, threads=2)
    assert on_cuda.device.startswith("cuda") and on_cuda.status == "completed"
    assert on_cuda.history[-1].val_accuracy > 0.8  # chance is 0.1
    # Same data, seed and schedule; other kernels (cuDNN's, TF32 convolutions) move the curve a little only.
    assert abs(on_cuda.history[-1].val_accuracy - on_cpu.history[-1].val_accuracy) < 0.06
    _, test_acc = evaluate(on_cuda.model, cuda_data.test_x, cuda_data.test_y)
    assert test_acc > 0.8
    assert {p.dtype for p in on_cuda.model.parameters()} == {torch.float32}


def test_the_cuda_step_computes_in_fp32():
    policy = policy_for("cuda")
    conv = nn.Conv2d(3, 6, 5).cuda()
    with policy.autocast():
        out = conv(torch.randn(8, 3, 32, 32, device="cuda"))
    assert out.dtype == torch.float32


def test_the_clock_waits_for_queued_gpu_work():
    policy = policy_for("cuda")
    a = torch.randn(4096, 4096, device="cuda")
    policy.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = policy.clock()
    start.record()
    for _ in range(20):
        a = a @ a
        a = a / a.norm()
    end.record()
    t1 = policy.clock()  # must not return before the products are done
    gpu_seconds = start.elapsed_time(end) / 1000
    assert gpu_seconds > 0.001
    assert t1 - t0 >= 0.9 * gpu_seconds


def test_out_of_memory_is_recognised_and_its_memory_given_back():
    policy = policy_for("cuda")
    policy.release_memory()
    before = torch.cuda.memory_reserved()
    held = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB, cached after del
    del held
    with pytest.raises(torch.cuda.OutOfMemoryError) as caught:
        torch.empty(2**50, dtype=torch.uint8, device="cuda")  # a petabyte
    assert is_out_of_memory(caught.value)
    del caught
    policy.release_memory()
    assert torch.cuda.memory_reserved() <= before


def test_the_step_clock_prices_a_cuda_run_close_to_its_measured_seconds(cuda_data):
    cfg = TrainConfig(**{**FAST, "max_epochs": 3})
    clock = calibrate_clock(cuda_data, [cfg.batch_size], [False], block_seconds=0.05, rounds=3)
    assert clock.device.startswith("cuda")
    run = train(cfg, cuda_data)
    priced = clock.seconds_for(cfg.batch_size, False, run.history[-1].step)
    measured = run.history[-1].train_seconds
    # Tiny synthetic epochs are dominated by per-step launches: the same order, within 2x.
    assert 0.5 < measured / priced < 2.0


def test_graphed_steps_give_the_eager_curves_on_the_card(cuda_data):
    # The policy replays steps from CUDA graphs on a card (lenet/steps.py); the eager step is the
    # reference. The same kernels in both, so the same curves to the last bit, and no fallback.
    eager = dataclasses.replace(policy_for("cuda"), graph_steps=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a capture that failed or differed would warn
        graphed = train(TrainConfig(**FAST), cuda_data)
    plain = train(TrainConfig(**FAST), cuda_data, policy=eager)
    assert [r.train_loss for r in graphed.history] == [r.train_loss for r in plain.history]
    assert [r.val_accuracy for r in graphed.history] == [r.val_accuracy for r in plain.history]


def test_a_graphed_epoch_never_synchronises_with_the_host(cuda_data):
    policy = policy_for("cuda")
    stepper = Stepper(TrainConfig(**FAST), cuda_data, policy)
    generator = policy.generator(0)
    n = len(cuda_data.train_x)
    steps = make_steps(stepper, n, generator, graphs=True)
    steps.begin_epoch(torch.randperm(n, device="cuda", generator=generator))
    per_epoch = -(-n // FAST["batch_size"])
    for i in range(per_epoch):  # captures both kinds of step (their checks read back: allowed here)
        steps.step(i)
    steps.begin_epoch(torch.randperm(n, device="cuda", generator=generator))
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(per_epoch):
            steps.step(i)
        stepper.update.set_lr(0.001)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(replay is not None for replay in steps.replays.values())
