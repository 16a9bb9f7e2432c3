"""The pipeline a user would write first, kept as the benchmark's baseline.

It mirrors torchvision's `datasets.CIFAR10`: images held as a uint8 HWC array, turned into a
PIL image per sample, then `ToTensor` and `Normalize`, batched by a `DataLoader` with worker
processes. The model, loss and optimizer are the engine's, so only the data path differs.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lenet.device import DevicePolicy, policy_for
from lenet.model import LeNet5


class NaiveCIFAR10(Dataset):
    """Per-sample access exactly as torchvision's CIFAR10 does it."""

    def __init__(self, images_u8: torch.Tensor, labels: torch.Tensor, mean, std) -> None:
        # Imported here: torchvision takes 1.4 s to import (it brings torch._dynamo), and
        # importing lenet.bench, which imports this module, should not pay it (docs/engine.md,
        # "Start-up").
        from torchvision import transforms

        self.data = images_u8.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3)
        self.targets = labels.tolist()
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        img = Image.fromarray(np.asarray(self.data[index]))
        return self.transform(img), self.targets[index]


def time_naive_epochs(
    dataset: NaiveCIFAR10,
    batch_size: int,
    epochs: int,
    num_workers: int = 2,
    seed: int = 0,
    policy: DevicePolicy | None = None,
) -> list[float]:
    """Seconds per training epoch through the DataLoader (first batch's worker start included,
    as a user running it would see), training on the policy's device as the engine does:
    pinned host memory and non-blocking copies on CUDA, the clock read after the device is done."""
    policy = policy or policy_for("cpu")
    torch.manual_seed(seed)
    model = LeNet5().to(policy.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    pin = policy.device.type == "cuda"
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers, pin_memory=pin)
    times = []
    for _ in range(epochs):
        start = policy.clock()
        for x, y in loader:
            x, y = x.to(policy.device, non_blocking=pin), y.to(policy.device, non_blocking=pin)
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        times.append(policy.clock() - start)
    return times
