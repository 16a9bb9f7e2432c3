"""K LeNet-5s trained as one model: a population of trials sharing one card's launches.

On a card LeNet-5's step is bound by kernel launches (docs/engine.md, "On a GPU"), so K
trials' steps as one step cost about what one costs until the arithmetic shows. The members
never mix: the convolutions are grouped (member k's channels are the k-th group), the fully
connected layers are batched matrix products, and the loss is each member's own mean summed, so
member k's gradient is its solo run's. `WideLeNet5.of(models)` stacks K LeNet-5s and
`member(k)` gives one back; in float64 the wide model computes what the K models compute to
rounding (tests/lenet/test_wide.py). The GPU issue's design note, section 2, option A.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lenet.model import LeNet5

_CONVS = ("conv1", "conv2")
_FCS = ("fc1", "fc2", "fc3")


class WideLeNet5(nn.Module):
    """`members` LeNet-5s side by side. Input: (B, 3K, 32, 32), member k's images in channels
    3k..3k+2 (`gather_batches` builds it); output: (K, B, classes)."""

    def __init__(self, members: int, num_classes: int = 10) -> None:
        super().__init__()
        self.members = k = members
        self.conv1 = nn.Conv2d(3 * k, 6 * k, kernel_size=5, groups=k)
        self.conv2 = nn.Conv2d(6 * k, 16 * k, kernel_size=5, groups=k)
        self.pool = nn.MaxPool2d(2)
        shapes = {"fc1": (120, 16 * 5 * 5), "fc2": (84, 120), "fc3": (num_classes, 84)}
        for name, (out, inp) in shapes.items():
            self.register_parameter(f"{name}_weight", nn.Parameter(torch.zeros(k, out, inp)))
            self.register_parameter(f"{name}_bias", nn.Parameter(torch.zeros(k, out)))

    @classmethod
    def of(cls, models: Sequence[LeNet5]) -> WideLeNet5:
        """The wide model holding a copy of each of `models`' weights, member k the k-th."""
        like = models[0].conv1.weight
        with torch.random.fork_rng(devices=[]):  # the layers' own initialisation, overwritten below
            wide = cls(len(models), models[0].fc3.out_features)
        wide = wide.to(device=like.device, dtype=like.dtype)
        with torch.no_grad():
            for k, model in enumerate(models):
                wide.load_member(k, model)
        return wide

    def load_member(self, k: int, model: LeNet5) -> None:
        """Member k's weights become `model`'s (a pruned member's slot taking the next trial)."""
        with torch.no_grad():
            for name in _CONVS:
                wide, solo = getattr(self, name), getattr(model, name)
                rows = solo.out_channels
                wide.weight[k * rows : (k + 1) * rows].copy_(solo.weight)
                wide.bias[k * rows : (k + 1) * rows].copy_(solo.bias)
            for name in _FCS:
                solo = getattr(model, name)
                getattr(self, f"{name}_weight")[k].copy_(solo.weight)
                getattr(self, f"{name}_bias")[k].copy_(solo.bias)

    def member(self, k: int) -> LeNet5:
        """Member k as a LeNet-5 of its own (a copy of its weights)."""
        model = LeNet5(self.fc3_weight.shape[1]).to(device=self.conv1.weight.device, dtype=self.conv1.weight.dtype)
        with torch.no_grad():
            for name in _CONVS:
                wide, solo = getattr(self, name), getattr(model, name)
                rows = solo.out_channels
                solo.weight.copy_(wide.weight[k * rows : (k + 1) * rows])
                solo.bias.copy_(wide.bias[k * rows : (k + 1) * rows])
            for name in _FCS:
                solo = getattr(model, name)
                solo.weight.copy_(getattr(self, f"{name}_weight")[k])
                solo.bias.copy_(getattr(self, f"{name}_bias")[k])
        return model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, batch = self.members, x.shape[0]
        h = torch.relu(self.pool(self.conv1(x)))
        h = torch.relu(self.pool(self.conv2(h)))  # (B, 16K, 5, 5)
        h = h.reshape(batch, k, 16 * 5 * 5).transpose(0, 1)  # (K, B, 400): each member's flatten order
        for name in _FCS:
            weight, bias = getattr(self, f"{name}_weight"), getattr(self, f"{name}_bias")
            h = torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
            if name != "fc3":
                h = torch.relu(h)
        return h

    def member_of_parameters(self) -> list[torch.Tensor]:
        """For each parameter (in `parameters()` order), the member each of its elements belongs to."""
        k = self.members
        owners = []
        for p in self.parameters():
            # Convolutions: member k owns rows k*rows..; the stacked fully connected tensors: index k.
            owners.append(torch.arange(k, device=p.device).repeat_interleave(p.numel() // k).view(p.shape))
        return owners


def owners_of(model: WideLeNet5, flat: torch.Tensor) -> torch.Tensor:
    """The member owning each element of `flat`, the buffer `flatten_parameters(model)` made
    (lenet/flat.py): the per-element index `MemberSgdUpdate` gathers its rates by."""
    owners = torch.empty(flat.shape, dtype=torch.long, device=flat.device)
    for p, owner in zip(model.parameters(), model.member_of_parameters()):
        owners.as_strided(p.shape, p.stride(), p.storage_offset() - flat.storage_offset()).copy_(owner)
    return owners


def gather_batches(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The wide model's input for members' batches `idx` (K, B) of images `x` (N, 3, 32, 32):
    one gather for all members, member k's batch in channels 3k..3k+2."""
    k, batch = idx.shape
    images = x[idx.reshape(-1)]  # (K*B, 3, 32, 32)
    return images.view(k, batch, *x.shape[1:]).transpose(0, 1).reshape(batch, k * x.shape[1], *x.shape[2:])


def members_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each member's mean cross-entropy on its batch, summed: the gradient of member k's
    weights is that of its own mean loss, as in its solo run. `logits` (K, B, C), `y` (K, B)."""
    k, batch, classes = logits.shape
    losses = nn.functional.cross_entropy(logits.reshape(k * batch, classes), y.reshape(-1), reduction="none")
    return losses.view(k, batch).mean(dim=1).sum()
