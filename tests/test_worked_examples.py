"""The verified values of ../shared/seeds/WORKED_EXAMPLES.md, computed through knowwhen's own code."""
import math

import numpy as np
import pytest
import torch

from knowwhen import DataConfig, TrainConfig, create_model
from knowwhen.training.losses import cross_entropy_loss, multiclass_hinge_loss
from knowwhen.models import layer_table

IMAGE = [[255, 220, 150, 200, 110, 100],
         [240, 50, 35, 45, 200, 130],
         [0, 20, 245, 250, 230, 120],
         [170, 180, 235, 145, 170, 255],
         [190, 185, 170, 165, 130, 120],
         [255, 255, 245, 190, 200, 175]]
FILTER = [[-0.7, 0.2, 0.1], [0.3, 0.5, 0.4], [-0.2, -0.4, 0.2]]


def test_convolution_relu_and_maxpool_through_the_cnn_layers():
    net = create_model("cnn", (1, 6, 6), 2)
    conv, relu, pool = net[0], net[1], net[4]
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0] = torch.tensor(FILTER)
        conv.bias.zero_()
        fmap = conv(torch.tensor(IMAGE, dtype=torch.float32)[None, None])[0, 0]
    expected = [[32.5, -105.5, -44.0, -60.5], [-105.5, 104.0, 224.0, 213.5],
                [185.5, 217.5, 38.5, 52.5], [54.0, 31.0, -18.0, 37.5]]
    np.testing.assert_allclose(fmap.numpy(), expected, atol=1e-4)
    pooled = pool(relu(fmap[None, None]))[0, 0]
    np.testing.assert_allclose(pooled.numpy(), [[104, 224], [217.5, 52.5]], atol=1e-4)


def test_softmax_and_cross_entropy_in_nats():
    scores = torch.tensor([[3.2, 5.1, -1.7]])
    probs = torch.softmax(scores, dim=1)[0].numpy()
    np.testing.assert_allclose(probs, [0.13, 0.87, 0.00], atol=0.005)
    loss = cross_entropy_loss(scores, torch.tensor([0]))
    assert loss.item() == pytest.approx(2.04, abs=0.005)
    assert loss.item() == pytest.approx(-math.log(probs[0]), rel=1e-6)


def test_multiclass_svm_hinge_losses():
    # Rows are examples (true classes cat, car, frog); columns the scores for cat, car, frog.
    scores = torch.tensor([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    target = torch.tensor([0, 1, 2])
    per_example = [multiclass_hinge_loss(scores[i:i + 1], target[i:i + 1]).item() for i in range(3)]
    np.testing.assert_allclose(per_example, [2.9, 0.0, 12.9], atol=1e-5)
    assert multiclass_hinge_loss(scores, target).item() == pytest.approx(5.2667, abs=1e-4)
    # Independent check: torch's MultiMarginLoss is the same sum divided by the number of classes.
    assert multiclass_hinge_loss(scores, target).item() == pytest.approx(
        3 * torch.nn.MultiMarginLoss(margin=1.0)(scores, target).item(), rel=1e-6)


def test_one_logistic_regression_gradient_step_with_the_sgd_optimizer():
    from knowwhen.training.classifier import Classifier

    layer = torch.nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight[:] = torch.tensor([[1.0, 2.0]])
        layer.bias[:] = -5.0
    cfg = TrainConfig(DataConfig("digits"), optimizer="sgd", lr=0.5, momentum=0.0)
    opt = Classifier(layer, cfg).configure_optimizers()
    z = layer(torch.tensor([[1.0, 2.0]]))
    assert z.item() == pytest.approx(0.0)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor([[1.0]]))
    loss.backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), [[-0.5, -1.0]])
    assert layer.bias.grad.item() == pytest.approx(-0.5)
    opt.step()
    np.testing.assert_allclose(layer.weight.detach().numpy(), [[1.25, 2.5]])
    assert layer.bias.item() == pytest.approx(-4.75)


def test_parameter_counts_320_and_1168():
    first = layer_table(create_model("cnn", (1, 28, 28), 10), (1, 28, 28))[0]
    assert (first.kind, first.params, first.output_shape) == ("Conv2d", 320, (32, 26, 26))
    first = layer_table(create_model("cnn", (8, 14, 14), 10, filters=16), (8, 14, 14))[0]
    assert (first.kind, first.params) == ("Conv2d", 1168)


def test_course_keras_mnist_cnn_has_600810_parameters():
    # The Keras mnist_cnn example (conv32, conv32, pool, dense128, dense10 on 28x28x1).
    net = create_model("cnn", (1, 28, 28), 10)
    assert sum(p.numel() for p in net.parameters()) == 600_810
