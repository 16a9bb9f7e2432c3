import torch
from torch import nn

from lenet.model import LeNet5, count_parameters, training_flops_per_image


def test_parameter_count_is_lenet5s():
    assert count_parameters(LeNet5()) == 62_006


def test_layer_shapes():
    m = LeNet5()
    assert (m.conv1.in_channels, m.conv1.out_channels, m.conv1.kernel_size) == (3, 6, (5, 5))
    assert (m.conv2.in_channels, m.conv2.out_channels, m.conv2.kernel_size) == (6, 16, (5, 5))
    assert [(fc.in_features, fc.out_features) for fc in (m.fc1, m.fc2, m.fc3)] == [(400, 120), (120, 84), (84, 10)]
    assert isinstance(m.pool1, nn.MaxPool2d) and isinstance(m.pool2, nn.MaxPool2d) and m.pool1 is not m.pool2


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
