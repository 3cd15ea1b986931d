import math

import pytest
import torch

from knowwhen import ConfigError, create_model, list_models, model_summary
from knowwhen.models import layer_table


def test_registry_lists_the_image_and_sequence_models():
    assert list_models() == ["cnn", "gru", "linear", "lstm", "mlp", "resnet", "rnn", "tcn", "vgg"]


@pytest.mark.parametrize("name", ["linear", "mlp", "cnn", "vgg", "resnet"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (2, 64, 64)])
def test_every_model_builds_for_the_input_and_classes(name, shape):
    net = create_model(name, shape, 7).eval()
    assert net(torch.zeros(3, *shape)).shape == (3, 7)


@pytest.mark.parametrize("name", ["mlp", "cnn", "vgg", "resnet"])
def test_dropout_is_a_module_with_the_configured_rate(name):
    net = create_model(name, (1, 28, 28), 3, dropout=0.3)
    rates = [m.p for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert 0.3 in rates


def test_glorot_uniform_initialisation():
    net = create_model("cnn", (1, 28, 28), 10)
    dense = net[7]
    bound = math.sqrt(6 / (dense.in_features + dense.out_features))
    w = dense.weight.detach()
    assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
    assert torch.all(dense.bias == 0)


def test_unknown_model_and_argument_and_bad_dropout():
    with pytest.raises(ConfigError, match="use one of cnn, gru, linear"):
        create_model("alexnet", (1, 8, 8), 2)
    with pytest.raises(ConfigError, match="no argument.*dropot.*allowed"):
        create_model("mlp", (1, 8, 8), 2, dropot=0.1)
    with pytest.raises(ConfigError, match="dropout.*\\[0, 1\\)"):
        create_model("mlp", (1, 8, 8), 2, dropout=1.5)


def test_summary_parameter_counts_add_up():
    net = create_model("vgg", (2, 64, 64), 19)
    rows = layer_table(net, (2, 64, 64))
    assert sum(r.params for r in rows) == sum(p.numel() for p in net.parameters())
    text = model_summary(net, (2, 64, 64))
    assert "BatchNorm2d" in text and f"{sum(p.numel() for p in net.parameters()):,}" in text


@pytest.mark.parametrize("name", ["linear", "mlp", "cnn", "vgg", "resnet"])
def test_models_are_built_in_training_mode(name):
    net = create_model(name, (2, 64, 64), 3)
    assert all(m.training for m in net.modules())
