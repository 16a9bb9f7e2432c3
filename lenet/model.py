"""LeNet-5 as the seed experiments trained it (ReLU, max-pooling, 62,006 parameters)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class MaxPool2x2(nn.Module):
    """Max-pooling over 2x2 windows, stride 2, as `nn.MaxPool2d(2)`. With `by_pairs` and autograd
    off (evaluation), on a channels-last input of even height and width, it takes the maximum of
    the windows' rows, then of their columns, over strided views: the same values, and an
    evaluation in 0.75x the time of max_pool2d's kernel on 2 CPU cores (docs/engine.md,
    "Evaluation"). With autograd on it is max_pool2d itself, whose gradient goes to one element
    of a tied window: training is unchanged."""

    def __init__(self, by_pairs: bool = False) -> None:
        super().__init__()
        self.by_pairs = by_pairs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if (
            not self.by_pairs
            or torch.is_grad_enabled()
            or h % 2
            or w % 2
            or not x.is_contiguous(memory_format=torch.channels_last)
        ):
            return F.max_pool2d(x, 2)
        windows = x.permute(0, 2, 3, 1).reshape(n, h // 2, 2, w // 2, 2, c)  # a view: channels-last is NHWC
        rows = torch.maximum(windows[:, :, 0], windows[:, :, 1])  # (n, h/2, w/2, 2, c)
        return torch.maximum(rows[:, :, :, 0], rows[:, :, :, 1]).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"by_pairs={self.by_pairs}"


class LeNet5(nn.Module):
    """conv 3->6 (5x5), pool, conv 6->16 (5x5), pool, fc 400-120-84-10, ReLU activations.

    Every layer is its own module (no module is reused in the graph), so hooks and FLOP
    counts see each one. ReLU is applied after each pooling layer rather than before: max
    and ReLU are both monotone, so relu(pool(x)) == pool(relu(x)) exactly (values and
    gradients), but the ReLU then touches 4x fewer elements; measured 10-20 % faster per
    epoch on 2 CPU cores.
    """

    def __init__(self, num_classes: int = 10, pool_by_pairs: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.pool1 = MaxPool2x2(pool_by_pairs)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = MaxPool2x2(pool_by_pairs)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.pool1(self.conv1(x)))
        x = self.relu2(self.pool2(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu3(self.fc1(x))
        x = self.relu4(self.fc2(x))
        return self.fc3(x)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_macs_per_image(model: LeNet5) -> tuple[int, int]:
    """Multiply-accumulates of one forward pass: (all layers, first layer alone).

    Computed from the layer shapes for a 32x32 input, so it follows the model if it changes.
    """
    macs = []
    side = 32
    for conv in (model.conv1, model.conv2):
        k = conv.kernel_size[0]
        side = side - k + 1
        macs.append(conv.out_channels * side * side * conv.in_channels * k * k)
        side //= 2
    for fc in (model.fc1, model.fc2, model.fc3):
        macs.append(fc.in_features * fc.out_features)
    return sum(macs), macs[0]


def training_flops_per_image(model: LeNet5) -> float:
    """FLOPs of one training step per image: forward, weight gradients and input gradients.

    Each pass costs 2 FLOPs per MAC; the first layer needs no gradient for its input (the
    image), which is why the total is a little under 3x the forward pass (about 3.2 MFLOP).
    """
    total, first = forward_macs_per_image(model)
    return 2.0 * (3 * total - first)
