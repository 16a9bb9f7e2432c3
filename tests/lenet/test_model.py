import pytest
import torch
from torch.nn import functional as F

from lenet.config import TrainConfig
from lenet.device import policy_for
from lenet.model import LeNet5, MaxPool2x2, count_parameters, training_flops_per_image
from lenet.step import build_model, evaluate


def test_parameter_count_is_lenet5s():
    assert count_parameters(LeNet5()) == 62_006


def test_layer_shapes():
    m = LeNet5()
    assert (m.conv1.in_channels, m.conv1.out_channels, m.conv1.kernel_size) == (3, 6, (5, 5))
    assert (m.conv2.in_channels, m.conv2.out_channels, m.conv2.kernel_size) == (6, 16, (5, 5))
    assert [(fc.in_features, fc.out_features) for fc in (m.fc1, m.fc2, m.fc3)] == [(400, 120), (120, 84), (84, 10)]
    assert isinstance(m.pool1, MaxPool2x2) and isinstance(m.pool2, MaxPool2x2) and m.pool1 is not m.pool2


def test_every_module_runs_exactly_once_per_forward():
    m = LeNet5()
    calls: dict[str, int] = {}
    for name, module in m.named_children():
        module.register_forward_hook(lambda mod, i, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1))
    out = m(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10)
    assert calls == {name: 1 for name, _ in m.named_children()}


def test_relu_after_pool_equals_classic_order():
    """The model pools before its ReLU; values and gradients equal the textbook order."""
    torch.manual_seed(0)
    m = LeNet5().double()
    x = torch.randn(8, 3, 32, 32, dtype=torch.float64)

    def classic(x):
        x = m.pool1(torch.relu(m.conv1(x)))
        x = m.pool2(torch.relu(m.conv2(x)))
        x = torch.relu(m.fc1(x.flatten(1)))
        return m.fc3(torch.relu(m.fc2(x)))

    ours = m(x)
    ref = classic(x)
    assert torch.allclose(ours, ref)
    g1 = torch.autograd.grad(ours.sum(), m.conv1.weight)[0]
    g2 = torch.autograd.grad(classic(x).sum(), m.conv1.weight)[0]
    assert torch.allclose(g1, g2)


def test_training_flops_about_3_2_mflop_per_image():
    assert abs(training_flops_per_image(LeNet5()) - 3.2e6) < 0.05e6


def _tied(shape: tuple[int, ...]) -> torch.Tensor:
    """Channels-last activations with tied windows (constant patches, as uniform image regions
    give), signed zeros and both signs."""
    torch.manual_seed(1)
    x = torch.randn(shape)
    x[:, :, : shape[2] // 2, : shape[3] // 2] = 0.25  # whole windows of equal values
    x[0, 0, -2:, -2:] = torch.tensor([[0.0, -0.0], [-1.0, 0.0]])
    return x.contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("shape", [(3, 6, 28, 28), (5, 16, 10, 10), (2, 4, 6, 8)])
def test_pooling_by_pairs_gives_max_pool2d_values_without_autograd(shape):
    x = _tied(shape)
    with torch.inference_mode():
        ours = MaxPool2x2(by_pairs=True)(x)
    ref = F.max_pool2d(x, 2)
    assert torch.equal(ours, ref)
    assert ours.is_contiguous(memory_format=torch.channels_last)


def test_pooling_by_pairs_propagates_nan_as_max_pool2d():
    x = _tied((1, 2, 4, 4))
    x[0, 1, 1, 0] = float("nan")
    with torch.inference_mode():
        ours = MaxPool2x2(by_pairs=True)(x)
    assert torch.equal(ours.isnan(), F.max_pool2d(x, 2).isnan()) and ours.isnan().sum() == 1


def test_pooling_by_pairs_leaves_training_to_max_pool2d():
    """With autograd on, the gradient of a tied window goes to one element, as max_pool2d's does
    (pairwise maxima would split it): training's numerics are unchanged."""
    x = _tied((2, 6, 28, 28)).requires_grad_()
    y = MaxPool2x2(by_pairs=True)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    x_ref = x.detach().clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(F.max_pool2d(x_ref, 2).sum(), x_ref)
    assert torch.equal(g, g_ref)
    tied = g[:, :, :14, :14]
    assert (tied != 0).sum() == 2 * 6 * 7 * 7 and tied.sum() == 2 * 6 * 7 * 7  # one element per window took it all


def test_pooling_by_pairs_falls_back_where_it_does_not_apply():
    odd = torch.randn(1, 2, 5, 6).contiguous(memory_format=torch.channels_last)
    nchw = torch.randn(1, 2, 6, 6)
    with torch.inference_mode():
        for x in (odd, nchw):
            assert torch.equal(MaxPool2x2(by_pairs=True)(x), F.max_pool2d(x, 2))


def test_evaluation_of_the_cpu_policys_model_equals_the_plain_models():
    policy = policy_for("cpu")
    assert policy.pool_by_pairs
    model = build_model(TrainConfig(seed=3), policy)
    plain = LeNet5().to(memory_format=torch.channels_last)
    plain.load_state_dict(model.state_dict())
    assert model.pool1.by_pairs and not plain.pool1.by_pairs
    torch.manual_seed(2)
    x = torch.randn(2500, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (2500,))
    assert evaluate(model, x, y, policy=policy) == evaluate(plain, x, y, policy=policy)
