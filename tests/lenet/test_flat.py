import pytest
import torch
from torch import nn

from lenet.flat import flatten_parameters
from lenet.model import LeNet5


def _model() -> nn.Module:
    torch.manual_seed(3)
    return LeNet5().to(memory_format=torch.channels_last)


def _steps(model: nn.Module, optimizer: torch.optim.Optimizer, zero, steps: int = 6) -> None:
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(16, 3, 32, 32, generator=gen).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (16,), generator=gen)
        zero()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


@pytest.mark.parametrize(
    "settings",
    [dict(momentum=0.9), dict(momentum=0.8, nesterov=True, weight_decay=5e-4), dict(momentum=0.0)],
)
def test_flat_sgd_is_bit_identical_to_sgd_over_separate_tensors(settings):
    reference = _model()
    ref_opt = torch.optim.SGD(reference.parameters(), lr=0.05, **settings)
    _steps(reference, ref_opt, lambda: ref_opt.zero_grad(set_to_none=True))

    model = _model()
    flat = flatten_parameters(model)
    opt = torch.optim.SGD([flat], lr=0.05, **settings)
    _steps(model, opt, flat.grad.zero_)

    for (name, a), b in zip(reference.named_parameters(), model.parameters()):
        assert torch.equal(a, b), name
    assert not torch.equal(flat, flatten_parameters(_model()))  # training moved the buffer


def test_parameters_and_gradients_are_views_of_the_flat_buffers():
    model = _model()
    before = [p.detach().clone() for p in model.parameters()]
    flat = flatten_parameters(model)
    assert flat.numel() == 62_006
    for p, value in zip(model.parameters(), before):
        assert torch.equal(p, value)  # values carried over
        assert p.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
        assert p.grad.untyped_storage().data_ptr() == flat.grad.untyped_storage().data_ptr()
    assert model.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    flat.detach().add_(1.0)
    assert torch.equal(model.fc3.bias, before[-1] + 1.0)
