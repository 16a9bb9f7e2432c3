"""An epoch's optimizer steps, run eagerly or replayed from CUDA graphs.

On a card LeNet-5's eager step is bound by kernel launches: 2.3-2.8 ms at every batch size on
an H100, and a CUDA graph of the whole step ran 8.6x / 8.1x / 4.1x / 1.7x faster at batch 32 /
128 / 512 / 2048 (docs/engine.md, "On a GPU"). A graph replays fixed device work on fixed
memory, so the step it captures must find everything on the device: the epoch's permutation in
a fixed buffer, a step counter that picks the batch, the learning rate in a tensor
(lenet/update.py), no value read back on the host (lenet/syncs.py). `StaticSteps` is that
step, run eagerly; `GraphedSteps` captures it, one graph for a full batch and one for the
partial last batch, at first use, and checks the first replay against the eager step before
trusting it. Both give the eager loop's curves to the last bit (tests/lenet/test_steps.py);
eager stays the reference and the path on the CPU and MPS.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Protocol

import torch

from lenet.step import Stepper

Replay = Callable[[], None]
Capture = Callable[[Replay], Replay]  # captures a step's device work, returns its replay


class DeviceStepper(Protocol):
    """What the static steps drive: a solo run's `Stepper`, or a population (lenet/population.py)."""

    params: torch.Tensor
    seen: int

    def compute(self, idx: torch.Tensor, generator: torch.Generator | None) -> None: ...

    def state(self) -> list[torch.Tensor]: ...


class Steps(Protocol):
    """The steps of an epoch: `begin_epoch(perm)`, then `step(i)` for i = 0, 1, ... in turn."""

    def begin_epoch(self, perm: torch.Tensor) -> None: ...

    def step(self, i: int) -> None: ...


class EagerSteps:
    """The steps as the loop has always run them: batch i sliced from the permutation."""

    def __init__(self, stepper: Stepper, batch_size: int, generator: torch.Generator) -> None:
        self.stepper, self.batch_size, self.generator = stepper, batch_size, generator
        self.perm: torch.Tensor | None = None

    def begin_epoch(self, perm: torch.Tensor) -> None:
        self.perm = perm

    def step(self, i: int) -> None:
        assert self.perm is not None, "begin_epoch first"
        self.stepper(self.perm[i * self.batch_size : (i + 1) * self.batch_size], self.generator)


class StaticSteps:
    """The same steps on static buffers, run eagerly: the permutation copied into a fixed tensor
    each epoch and batch i found on the device from a step counter, so that a captured step
    replays without the host. The batch indices are the eager loop's, so are the curves. A
    population has one permutation per member (`rows`), and batch i of each."""

    def __init__(
        self,
        stepper: DeviceStepper,
        train_size: int,
        batch_size: int,
        generator: torch.Generator | None,
        rows: int | None = None,
    ) -> None:
        device = stepper.params.device
        self.stepper, self.generator = stepper, generator
        self.train_size, self.batch_size = train_size, batch_size
        self.steps_per_epoch = -(-train_size // batch_size)
        self.partial_size = train_size % batch_size
        shape = (train_size,) if rows is None else (rows, train_size)
        self.perm = torch.zeros(shape, dtype=torch.long, device=device)
        self.counter = torch.zeros((), dtype=torch.long, device=device)
        self.offsets = {
            False: torch.arange(batch_size, device=device),
            True: torch.arange(self.partial_size, device=device),
        }

    def begin_epoch(self, perm: torch.Tensor) -> None:
        self.perm.copy_(perm)
        self.counter.zero_()

    def step(self, i: int) -> None:
        partial = bool(self.partial_size) and i == self.steps_per_epoch - 1
        self._run(partial)
        self.stepper.seen += self.partial_size if partial else self.batch_size

    def _run(self, partial: bool) -> None:
        self.device_step(partial)

    def device_step(self, partial: bool) -> None:
        """One step's device work: what a graph captures."""
        # Modulo the training set: the identity in an epoch, and steps timed past an epoch's
        # end (the step clock's blocks) stay in range.
        idx = self.perm[..., (self.counter * self.batch_size + self.offsets[partial]) % self.train_size]
        self.stepper.compute(idx, self.generator)
        self.counter.add_(1)

    def state(self) -> list[torch.Tensor]:
        """Every tensor a step changes."""
        return [*self.stepper.state(), self.counter]


class GraphedSteps(StaticSteps):
    """`StaticSteps` replayed from graphs, each kind of step (full, partial) captured by
    `capture` at its first use. The first replay is checked against the eager step from the
    same state, bitwise; a capture that fails or differs leaves that kind of step eager, with
    a warning."""

    def __init__(
        self,
        stepper: DeviceStepper,
        train_size: int,
        batch_size: int,
        generator: torch.Generator | None,
        capture: Capture,
        rows: int | None = None,
    ) -> None:
        super().__init__(stepper, train_size, batch_size, generator, rows)
        self.capture = capture
        self.replays: dict[bool, Replay | None] = {}  # None: that kind of step runs eagerly

    def _run(self, partial: bool) -> None:
        if partial not in self.replays:
            self.replays[partial] = self._captured(partial)
        replay = self.replays[partial]
        if replay is None:
            self.device_step(partial)
        else:
            replay()

    def _captured(self, partial: bool) -> Replay | None:
        kind = "partial" if partial else "full"
        before = [t.clone() for t in self.state()]
        try:
            replay = self.capture(lambda: self.device_step(partial))
            self._restore(before)  # the capture's warm-up steps trained
            replay()
            replayed = [t.clone() for t in self.state()]
            self._restore(before)
            self.device_step(partial)
            same = all(torch.equal(a, b) for a, b in zip(replayed, self.state()))
            self._restore(before)
        except Exception as exc:  # any capture failure: the step is still right eagerly
            self._restore(before)
            warnings.warn(f"the {kind} training step runs eagerly: capturing it failed ({exc})", stacklevel=2)
            return None
        if not same:
            warnings.warn(f"the {kind} training step runs eagerly: its graph's replay differed from it", stacklevel=2)
            return None
        return replay

    def _restore(self, saved: list[torch.Tensor]) -> None:
        with torch.no_grad():
            for tensor, value in zip(self.state(), saved):
                tensor.copy_(value)


def capture_cuda(step: Replay) -> Replay:
    """`step` captured into a CUDA graph: warmed up on a side stream (cuDNN's autotuning and
    workspaces for these shapes, as `torch.cuda.graph` requires), then recorded once."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    # Each graph its own memory pool: runs are suspended and resumed in any order (the
    # confirmation race), and a pool shared across captures is safe only for graphs replayed in
    # the order they were captured (PyTorch's notes on CUDA graphs, "Sharing memory across
    # captures"). A graph's pool holds one step's intermediates and goes with its run.
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def make_steps(
    stepper: Stepper, train_size: int, generator: torch.Generator, *, graphs: bool, capture: Capture = capture_cuda
) -> Steps:
    """The steps a run takes: replayed from graphs where `graphs` (the device policy's choice)
    and the step has no augmentation (its random crops would need the generator registered
    with the graph), else eager."""
    batch_size = stepper.config.batch_size
    if graphs and not stepper.config.augment:
        return GraphedSteps(stepper, train_size, batch_size, generator, capture)
    return EagerSteps(stepper, batch_size, generator)
