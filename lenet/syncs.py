"""Finding the operations that make the host wait for the device, on any device.

A CUDA graph replays only device work: a step that reads a value back on the host (`.item()`,
`nonzero`, a data-dependent shape) cannot be captured, and in an eager loop each such read
stalls the queue. `torch.cuda.set_sync_debug_mode` catches them on a card only; this dispatch
mode sees the same operations on the CPU, where the tests run (the GPU issue's design note,
section 5).
"""

from __future__ import annotations

from typing import Any

from torch.utils._python_dispatch import TorchDispatchMode

# The ATen operations whose result the host must wait for: a tensor's value read as a Python
# number (`.item()`, `float()`, `bool()`, `==` of whole tensors) or a shape that depends on values.
HOST_READS = frozenset(
    {
        "aten._local_scalar_dense.default",
        "aten.nonzero.default",
        "aten.is_nonzero.default",
        "aten.equal.default",
        "aten.masked_select.default",
        "aten.unique_consecutive.default",
        "aten._unique2.default",
        "aten.repeat_interleave.Tensor",
    }
)
# What it cannot see on the CPU: `.tolist()` and `.cpu()` of a CPU tensor reach no operation,
# and a boolean mask's `nonzero` happens inside `aten.index`. On a card
# `torch.cuda.set_sync_debug_mode("error")` sees those (tests/lenet/test_cuda.py).


class HostReads(TorchDispatchMode):
    """Records every operation run under it that reads the device's values on the host."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if str(func) in HOST_READS:
            self.found.append(str(func))
        return func(*args, **(kwargs or {}))
