"""The device policy for cpu, cuda and mps (no hardware needed), and what the training loop
does with it: clocks read after synchronising, no float64 where MPS has none, autocast on the
flat buffer, warm-up outside the clock."""

import dataclasses
import inspect

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import lenet.device
import lenet.step
import lenet.train
from lenet.config import TrainConfig
from lenet.device import (
    DevicePolicy,
    accelerator_count,
    hardware,
    is_out_of_memory,
    policy_for,
    warm_up,
    worker_device,
)
from lenet.train import train

SHORT = TrainConfig(batch_size=64, lr=0.01, momentum=0.9, step_size=3, gamma=0.5, max_epochs=2, evals_per_epoch=2)


def test_cpu_policy_trains_in_fp32_with_float64_sums_and_no_sync():
    p = policy_for("cpu")
    assert p.autocast_dtype is None and p.accumulator_dtype == torch.float64
    assert p.sync == "none" and p.generator_device == torch.device("cpu") and not p.cudnn_benchmark
    assert p.memory_format == torch.channels_last


def test_cuda_policy_trains_in_fp32_synchronises_and_autotunes():
    p = policy_for(torch.device("cuda:1"))  # no card needed to build it
    assert p.autocast_dtype is None  # bf16 autocast was slower for LeNet-5 on an H100 (docs/engine.md)
    assert p.sync == "cuda" and p.cudnn_benchmark and p.device == torch.device("cuda:1")
    assert p.generator_device == torch.device("cuda:1") and p.accumulator_dtype == torch.float64


def test_mps_policy_has_no_float64_and_no_disabled_autocast():
    p = policy_for(torch.device("mps"))
    assert p.accumulator_dtype == torch.float32 and p.autocast_dtype is None
    assert p.sync == "mps" and p.generator_device == torch.device("cpu")
    # Not torch.autocast(device_type="mps", enabled=False), which raises on some releases.
    assert not isinstance(p.autocast(), torch.autocast)


def test_every_clock_read_follows_a_synchronisation(synthetic_data, monkeypatch):
    events = []
    real_counter = lenet.device.time.perf_counter
    monkeypatch.setattr(DevicePolicy, "synchronize", lambda self: events.append("sync"))
    monkeypatch.setattr(lenet.device.time, "perf_counter", lambda: events.append("clock") or real_counter())
    result = train(SHORT, synthetic_data)
    assert len(result.history) == 4
    clocks = [i for i, e in enumerate(events) if e == "clock"]
    assert len(clocks) >= 5  # wall start, epoch start, two evaluations, a restart and the wall times
    assert all(i > 0 and events[i - 1] == "sync" for i in clocks)
    # The loop and the step read no clock of their own: every timing goes through the policy.
    for module in (lenet.train, lenet.step):
        assert "perf_counter" not in inspect.getsource(module) and "time" not in vars(module)


class _Dtypes(TorchDispatchMode):
    """Records the dtype of every tensor any op returns."""

    def __init__(self):
        super().__init__()
        self.seen = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.seen.add(t.dtype)
        return out


def test_an_mps_policy_creates_no_float64_tensor(synthetic_data):
    # The MPS policy's choices, run on the CPU (which cannot tell us about MPS kernels, but does
    # see every dtype the loop asks for).
    mps_like = dataclasses.replace(policy_for(torch.device("mps")), device=torch.device("cpu"), sync="none")
    with _Dtypes() as mode:
        result = train(SHORT, synthetic_data, policy=mps_like)
    assert result.history[-1].val_accuracy > 0.8
    assert torch.float64 not in mode.seen, mode.seen
    with _Dtypes() as control:  # the CPU policy does use float64 sums: the check can fail
        train(SHORT, synthetic_data)
    assert torch.float64 in control.seen


def test_a_step_under_forced_autocast_keeps_the_flat_buffer_fp32(synthetic_data):
    bf16 = dataclasses.replace(policy_for("cpu"), autocast_dtype=torch.bfloat16)
    result = train(SHORT, synthetic_data, policy=bf16)
    assert all(torch.isfinite(torch.tensor(r.train_loss)) for r in result.history)
    assert result.history[-1].val_accuracy > 0.8  # it learns under bf16
    params = list(result.model.parameters())
    assert all(p.dtype == torch.float32 and p.grad is not None and p.grad.dtype == torch.float32 for p in params)
    # Still views of one flat buffer: autocast made copies for the kernels, never of the weights.
    storages = {p.untyped_storage().data_ptr() for p in params}
    assert len(storages) == 1


def test_warm_up_touches_no_generator_and_does_not_change_results(synthetic_data):
    lenet.device._WARMED.clear()
    state = torch.get_rng_state()
    assert warm_up(policy_for("cpu"), (64, 7), (2500, 400), 10) == 4
    assert warm_up(policy_for("cpu"), (64,), (400,), 10) == 0  # once per shape per process
    assert torch.equal(state, torch.get_rng_state())
    timing = {"train_seconds", "wall_seconds"}
    lenet.device._WARMED.clear()
    cold = [{k: v for k, v in r.to_dict().items() if k not in timing} for r in train(SHORT, synthetic_data).history]
    warm = [{k: v for k, v in r.to_dict().items() if k not in timing} for r in train(SHORT, synthetic_data).history]
    assert cold == warm


@pytest.mark.parametrize(
    "exc,oom",
    [
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), True),
        (RuntimeError("MPS backend out of memory (MPS allocated: 8.00 GB)"), True),
        (RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"), True),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate(handle)"), True),
        (RuntimeError("mat1 and mat2 shapes cannot be multiplied"), False),
        (ValueError("out of memory"), False),
    ],
)
def test_out_of_memory_of_every_kind_is_recognised(exc, oom):
    assert is_out_of_memory(exc) is oom


def test_workers_spread_over_the_cards():
    assert [worker_device("cuda", i, 2) for i in range(5)] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert worker_device("cuda:1", 3, 2) == "cuda:1"  # a named card is shared
    assert worker_device("cpu", 3, 1) == "cpu" and worker_device("mps", 1, 1) == "mps"
    assert accelerator_count("cpu") == 1


def test_cpu_hardware_provenance():
    h = hardware("cpu")
    assert h["type"] == "cpu" and h["count"] >= 1 and h["name"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_hardware_provenance_names_the_card():
    h = hardware("cuda")
    assert h["type"] == "cuda" and h["count"] == torch.cuda.device_count() and h["cuda"] and h["cudnn"]
