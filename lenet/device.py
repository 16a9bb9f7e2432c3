"""Every device choice in one place, keyed by the device: autocast and its dtype, accumulator
dtype, generator, memory format, synchronisation, the clock, warm-up and releasing memory;
and choosing the device and the CPU thread count per worker process."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lenet.errors import InputError


@dataclass(frozen=True)
class DevicePolicy:
    """How the engine trains on one device. `policy_for(device)` gives the right one; tests may
    build others (e.g. an MPS-like policy on the CPU) to check what each choice implies."""

    device: torch.device
    autocast_dtype: torch.dtype | None  # None: train in fp32
    accumulator_dtype: torch.dtype  # running loss sums (MPS has no float64)
    generator_device: torch.device  # where the shuffling/augmentation generator lives
    sync: Literal["cuda", "mps", "none"]  # how to wait for the device's queued work
    cudnn_benchmark: bool = False  # autotune convolutions per input shape (once per process)
    graph_steps: bool = False  # replay training steps from CUDA graphs (lenet/steps.py)
    memory_format: torch.memory_format = torch.channels_last
    # Evaluation max-pools by pairwise maxima of strided views, not max_pool2d's kernel (lenet/model.py).
    pool_by_pairs: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for the training step only; evaluation is always fp32."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()  # never torch.autocast(enabled=False): MPS rejects it on some releases
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def synchronize(self) -> None:
        if self.sync == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.sync == "mps":
            torch.mps.synchronize()

    def clock(self) -> float:
        """Seconds on a monotonic clock, read only after the device has finished its queued work."""
        self.synchronize()
        return time.perf_counter()

    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(device=self.generator_device).manual_seed(seed)

    def release_memory(self) -> None:
        """Give cached device memory back, once nothing refers to the tensors any more."""
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()


def policy_for(device: torch.device | str) -> DevicePolicy:
    """The policy for `device`."""
    device = torch.device(device)
    if device.type == "cuda":
        # fp32, no autocast: LeNet-5's step on a card is bound by kernel launches, not arithmetic,
        # and bf16 autocast only adds cast kernels. Measured on an H100 (benchmarks/step_precision.py,
        # docs/engine.md): fp32 took 0.81-0.97x the bf16 step's time at batch 32-2048.
        # Steps from CUDA graphs: the eager step waits on launches (8.6x-1.7x, docs/engine.md).
        return DevicePolicy(device, None, torch.float64, device, "cuda", cudnn_benchmark=True, graph_steps=True)
    if device.type == "mps":
        # No float64 on MPS; its generator support varies by release, so shuffling draws on the CPU.
        return DevicePolicy(device, None, torch.float32, torch.device("cpu"), "mps")
    # Evaluation's max-pooling by pairwise maxima: 0.07 s against 0.10 s per evaluation on 2 cores
    # (docs/engine.md, "Evaluation"); a card's max_pool2d is one kernel, the pairs two.
    return DevicePolicy(device, None, torch.float64, device, "none", pool_by_pairs=True)


# Shapes warmed up in this process, per device: (device, kind, batch) for kind "train" or "eval".
_WARMED: set[tuple[str, str, int]] = set()


def warm_up(policy: DevicePolicy, train_batches: Iterable[int], eval_batches: Iterable[int], num_classes: int) -> int:
    """Run every shape a run will use once, on a throw-away model, before any clock starts:
    CUDA context and lazy modules, cuDNN autotuning (once per input shape per process), the
    allocator's first blocks. Touches neither the run's model nor any random generator the run
    uses. Returns how many shapes were new to this process."""
    from lenet.model import LeNet5

    todo = [("train", b) for b in sorted(set(train_batches))] + [("eval", b) for b in sorted(set(eval_batches))]
    todo = [(kind, b) for kind, b in todo if b > 0 and (str(policy.device), kind, b) not in _WARMED]
    if not todo:
        return 0
    if policy.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    with torch.random.fork_rng(devices=[]):
        model = LeNet5(num_classes, policy.pool_by_pairs).to(device=policy.device, memory_format=policy.memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0, momentum=0.9)
    for kind, batch in todo:
        x = torch.zeros(batch, 3, 32, 32, device=policy.device).contiguous(memory_format=policy.memory_format)
        y = torch.zeros(batch, dtype=torch.long, device=policy.device)
        if kind == "train":
            with policy.autocast():
                loss = nn.functional.cross_entropy(model(x).float(), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        else:
            with torch.inference_mode():
                model(x).argmax(dim=1)
        _WARMED.add((str(policy.device), kind, batch))
    policy.synchronize()
    return len(todo)


def is_out_of_memory(exc: BaseException) -> bool:
    """Out of device memory, of any kind: CUDA's own error, MPS's and cuDNN's allocation failures."""
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text.lower() or "CUDNN_STATUS_ALLOC_FAILED" in text or "CUBLAS_STATUS_ALLOC_FAILED" in text
    )


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; any other name must be available here."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise InputError(f"unknown device {name!r} (expected auto, cpu, cuda, cuda:N or mps)") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} requested but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise InputError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"device {name!r} requested but MPS is not available on this machine")
    return device


def accelerator_count(device_type: str) -> int:
    """How many devices of this type the machine has (CUDA cards; one MPS; the CPU counts one)."""
    return torch.cuda.device_count() if device_type == "cuda" else 1


@dataclass(frozen=True)
class Placement:
    """Where one worker trains: its device, and its torch CPU threads (None off the CPU)."""

    device: str
    threads: int | None


def worker_device(device: str, worker_index: int, count: int) -> str:
    """The device worker `worker_index` trains on: CUDA workers spread round-robin over the
    cards (worker i on card i mod count) unless a card was named; others share the device."""
    dev = torch.device(device)
    if dev.type != "cuda" or dev.index is not None or count < 1:
        return device
    return f"cuda:{worker_index % count}"


def hardware(device: torch.device | str) -> dict[str, Any]:
    """What the device is, for a study's provenance: its name and count; CUDA and cuDNN versions."""
    device = torch.device(device)
    if device.type == "cuda":
        index = device.index or 0
        return {
            "type": "cuda",
            "name": torch.cuda.get_device_name(index),
            "count": torch.cuda.device_count(),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    if device.type == "mps":
        return {"type": "mps", "name": platform.machine(), "count": 1}
    return {"type": "cpu", "name": _cpu_name(), "count": cpu_count()}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_count() -> int:
    """Cores this process may use (respects affinity masks and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads (None: all cores) and return the number in force.

    Several workers side by side must split the cores between them: oversubscribed
    threads were measured 20-190x slower on 2 cores.
    """
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    return torch.get_num_threads()
