"""fc -> conv conversion is exact: same logits at the nominal size, a heatmap beyond it."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from tinyfcn.classifier import INPUT_SIZE, MnistClassifier
from tinyfcn.convert import convolutionalize, linear_to_conv
from tinyfcn.geometry import output_size


@pytest.mark.parametrize("seed", range(5))
def test_random_mnist_classifiers_give_the_same_logits(seed: int) -> None:
    torch.manual_seed(seed)
    clf = MnistClassifier()
    # Not only the default init: scale weights so ReLUs are in varied regimes.
    with torch.no_grad():
        for p in clf.parameters():
            p.mul_(torch.empty(()).uniform_(0.5, 3.0))
    fcn = convolutionalize(clf, INPUT_SIZE)
    x = torch.rand(8, 1, *INPUT_SIZE)
    with torch.no_grad():
        torch.testing.assert_close(fcn(x).flatten(1), clf(x), rtol=1e-5, atol=1e-5)


def test_heatmap_on_an_m2nist_sized_image() -> None:
    clf = MnistClassifier().eval()
    fcn = convolutionalize(clf, INPUT_SIZE).eval()
    x = torch.rand(2, 1, 64, 84)
    with torch.no_grad():
        heat = fcn(x)
    assert heat.shape == (2, 10, *output_size(fcn, (64, 84))) == (2, 10, 10, 15)
    # Each heatmap cell is the classifier applied to the 28x28 window it sees (stride 4).
    with torch.no_grad():
        for i, j in [(0, 0), (3, 7), (9, 14)]:
            window = x[:, :, 4 * i : 4 * i + 28, 4 * j : 4 * j + 28]
            torch.testing.assert_close(heat[:, :, i, j], clf(window), rtol=1e-5, atol=1e-5)


def test_the_original_is_left_untouched() -> None:
    clf = MnistClassifier()
    before = {k: v.clone() for k, v in clf.state_dict().items()}
    fcn = convolutionalize(clf, INPUT_SIZE)
    with torch.no_grad():
        for p in fcn.parameters():
            p.add_(1.0)
    assert all(torch.equal(before[k], v) for k, v in clf.state_dict().items())


def test_vgg16_gives_torchvision_logits() -> None:
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16().eval()  # random weights: equality is about structure
    fcn = convolutionalize(vgg, (224, 224)).eval()
    fc6, fc7, fc8 = (m for m in fcn.classifier if isinstance(m, nn.Conv2d))
    assert (fc6.kernel_size, fc7.kernel_size, fc8.kernel_size) == ((7, 7), (1, 1), (1, 1))
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(fcn(x).flatten(1), vgg(x), rtol=1e-4, atol=1e-4)


def test_avgpool_that_resizes_is_refused() -> None:
    vgg = torchvision.models.vgg11()
    with pytest.raises(ValueError, match="avgpool"):
        convolutionalize(vgg, (256, 256))  # features give 8x8, the pool makes 7x7


def test_bad_models_are_refused() -> None:
    with pytest.raises(TypeError, match="features"):
        convolutionalize(nn.Linear(3, 3), (28, 28))
    with pytest.raises(ValueError, match="reads 201 features"):
        linear_to_conv(nn.Linear(201, 4), 8, (5, 5))
    odd = MnistClassifier()
    odd.classifier.append(nn.Softmax(dim=1))
    with pytest.raises(TypeError, match="Softmax"):
        convolutionalize(odd, INPUT_SIZE)
