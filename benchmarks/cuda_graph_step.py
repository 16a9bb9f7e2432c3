"""Does a CUDA graph pay for LeNet-5's training step? Seconds per step of the eager step against
the same step replayed from one captured CUDA graph (forward, backward and SGD update; the batch
gathered inside the graph from a static index tensor), per batch size, interleaved (median of
rounds). A measurement for the engine's next step, not yet part of it (docs/engine.md).

    python benchmarks/cuda_graph_step.py
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from lenet.model import LeNet5

N = 45_000  # a resident training set of CIFAR-10's size (random pixels: the step's cost does not depend on them)


class Step:
    def __init__(self, batch_size: int, graphed: bool) -> None:
        torch.manual_seed(0)
        self.x = torch.randn(N, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (N,), device="cuda")
        self.model = LeNet5(10).cuda().to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        self.idx = torch.randint(0, N, (batch_size,), device="cuda")
        self.batch_size, self.graph = batch_size, None
        if graphed:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up on a side stream, as torch.cuda.graph requires
                for _ in range(3):
                    self._step()
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            self.opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(self.graph):
                self._step()

    def _step(self) -> None:
        loss = nn.functional.cross_entropy(self.model(self.x[self.idx]), self.y[self.idx])
        loss.backward()
        self.opt.step()
        if self.graph is None:
            self.opt.zero_grad(set_to_none=False)

    def run(self, steps: int) -> float:
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.idx.random_(0, N)  # a new batch: one kernel, outside the graph
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()
        torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps


def main() -> None:
    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(f"{'batch':>6} {'eager ms/step':>14} {'graph ms/step':>14} {'speed-up':>9}")
    for b in (32, 128, 512, 2048):
        steps = {"eager": Step(b, graphed=False), "graph": Step(b, graphed=True)}
        times: dict[str, list[float]] = {k: [] for k in steps}
        for s in steps.values():
            s.run(20)  # warm-up
        for _ in range(7):
            for k, s in steps.items():
                times[k].append(s.run(200))
        e, g = statistics.median(times["eager"]), statistics.median(times["graph"])
        print(f"{b:>6} {e * 1e3:>14.3f} {g * 1e3:>14.3f} {e / g:>8.1f}x")


if __name__ == "__main__":
    main()
