"""All of a model's parameters in one buffer, and their gradients in another.

LeNet-5 has 10 parameter tensors holding 62,006 numbers. At small batch sizes a training step
is so short that the per-tensor work of the optimizer (three small kernels per tensor for SGD
with momentum) and of `zero_grad` shows in the step time. With every parameter a view into one
flat tensor, and every gradient a view into another, SGD updates one tensor and zeroing the
gradients is one fill. Each update is elementwise, so the result is bit for bit the same as
SGD over the separate tensors (a test checks it).
"""

from __future__ import annotations

import torch
from torch import nn


def flatten_parameters(model: nn.Module) -> nn.Parameter:
    """Re-seat `model`'s parameters and gradients as views of two flat buffers.

    Returns the flat parameter, whose `.grad` is the flat gradient buffer: hand it to the
    optimizer instead of `model.parameters()`, and zero gradients with `flat.grad.zero_()`
    (never set them to None: autograd must keep accumulating into the views). Call it after
    the model has been moved to its device and memory format: `.to()` would copy the
    parameters out of the buffer. Each view keeps its parameter's strides (channels-last
    convolution weights stay channels-last).
    """
    params = list(model.parameters())
    if not params:
        raise ValueError("model has no parameters to flatten")
    first = params[0]
    total = sum(p.numel() for p in params)
    flat = torch.empty(total, device=first.device, dtype=first.dtype)
    grad = torch.zeros_like(flat)
    offset = 0
    for p in params:
        dense = p.is_contiguous() or (p.dim() == 4 and p.is_contiguous(memory_format=torch.channels_last))
        if not dense:
            raise ValueError(f"cannot flatten a parameter of shape {tuple(p.shape)} with strides {p.stride()}")
        value = flat.as_strided(p.shape, p.stride(), offset)
        value.copy_(p.detach())
        p.data = value
        # Autograd adds into an existing .grad in place, so gradients land in the flat buffer.
        p.grad = grad.as_strided(p.shape, p.stride(), offset)
        offset += p.numel()
    flat_param = nn.Parameter(flat)
    flat_param.grad = grad
    return flat_param
