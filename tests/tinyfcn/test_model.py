"""The tiny FCN variants: sizes, computed crops and padding, input checks.

The expected paddings and crop offsets are the hand derivation in :mod:`tinyfcn.model`'s
docstring (where students read it); these tests compare it with what the model computes.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from tests.model_checks import ModelChecks
from tinyfcn import VARIANTS, MnistClassifier, TinyFCN, TrainConfig, convolutionalize
from tinyfcn.classifier import INPUT_SIZE
from tinyfcn.fcn import crop_plan

SIZES = ((28, 28), (29, 31), (30, 33), (31, 30), (64, 84), (65, 85), (66, 87), (100, 37))


class _TinyChecks(ModelChecks):
    num_classes = 11
    in_channels = 1
    sizes: ClassVar = SIZES
    variant: ClassVar[str]
    expected_padding: ClassVar[int]

    def make_model(self) -> TinyFCN:
        torch.manual_seed(0)
        return TinyFCN(self.variant, MnistClassifier(), learnable_upsampling=True)

    def test_padding_is_the_hand_computed_minimum(self) -> None:
        assert self.make_model().padding == self.expected_padding


class TestFcn4s(_TinyChecks):
    variant = "fcn4s"
    expected_padding = 13
    expected_crop_offsets: ClassVar = {"score": 3}


class TestFcn2s(_TinyChecks):
    variant = "fcn2s"
    expected_padding = 12
    expected_crop_offsets: ClassVar = {"score_pool1": 4, "score": 3}


class TestFcn1s(_TinyChecks):
    variant = "fcn1s"
    expected_padding = 12
    expected_crop_offsets: ClassVar = {"score_pool1": 4, "score_conv1": 7, "score": 3}


class TestArticle(_TinyChecks):
    variant = "article"
    expected_padding = 3
    expected_crop_offsets: ClassVar = {"score": 3}


def _fails_at_some_size(model: TinyFCN, padding: int) -> bool:
    """Whether ``model`` padded by ``padding``, its crops recomputed for that padding, has a
    negative crop or leaves some size of one stride period from 28 uncovered."""
    model.conv1[0].padding = (padding, padding)
    try:
        model.crop_offsets = crop_plan(model.crop_paths())
        for h in range(28, 32):
            for w in range(28, 32):
                model(torch.zeros(1, 1, h, w))
    except ValueError:
        return True
    return False


@pytest.mark.parametrize("variant", VARIANTS)
def test_one_less_padding_fails_somewhere(variant: str) -> None:
    """The computed padding is minimal: one pixel less leaves some size uncovered, even with
    the crops recomputed for it (keeping the correct padding's crops would prove nothing)."""
    model = TinyFCN(variant)
    padding = model.padding
    assert not _fails_at_some_size(model, padding)
    assert _fails_at_some_size(model, padding - 1)


def test_score_fr_keeps_the_classifier_digits() -> None:
    """On a lone digit the converted net's digit scores are the classifier's logits
    (up to the background row), once the padding is taken away."""
    torch.manual_seed(1)
    classifier = MnistClassifier().eval()
    model = TinyFCN("fcn4s", classifier).eval()
    model.conv1[0].padding = (0, 0)
    x = torch.rand(3, 1, *INPUT_SIZE)
    with torch.no_grad():
        coarse = model.score_fr(model.fc(model.pool2(model.conv2(model.pool1(model.conv1(x))))))
        expected = convolutionalize(classifier, INPUT_SIZE)(x)
    torch.testing.assert_close(coarse[:, :10], expected)
    assert torch.equal(coarse[:, 10], torch.zeros_like(coarse[:, 10]))


def test_frozen_upsampling_is_not_trained() -> None:
    model = TinyFCN("fcn1s", learnable_upsampling=False)
    assert not model.upscore2.weight.requires_grad
    assert not model.upscore_pool1.weight.requires_grad
    assert TinyFCN("fcn1s", learnable_upsampling=True).upscore2.weight.requires_grad


def test_the_model_and_the_recipe_default_to_the_same_upsampling() -> None:
    """Code written as the docs show (``TinyFCN(variant, classifier)``) trains the default
    recipe's net, not the frozen ablation."""
    assert TinyFCN("fcn1s").learnable_upsampling is TrainConfig().learnable_upsampling is True
    assert TinyFCN("fcn1s").upscore_pool1.weight.requires_grad


def test_article_upsampling_preserves_constants() -> None:
    """The rescaled k6 s2 tent maps a constant map to the same constant inside its border."""
    model = TinyFCN("article")
    out = model.upscore2_k6(torch.ones(1, 11, 6, 6))
    torch.testing.assert_close(out[..., 4:-4, 4:-4], torch.ones_like(out[..., 4:-4, 4:-4]))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.zeros(1, 64, 84), "(N, 1, H, W)"),
        (torch.zeros(1, 3, 64, 84), "input channel"),
        (torch.zeros(1, 1, 27, 84), "at least 28x28"),
        (torch.zeros(1, 1, 64, 84, dtype=torch.uint8), "float"),
    ],
)
def test_bad_inputs_are_refused_clearly(x: torch.Tensor, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TinyFCN("fcn1s")(x)


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown variant 'fcn8s'"):
        TinyFCN("fcn8s")


def test_the_background_is_the_one_class_the_classifier_lacks() -> None:
    assert TinyFCN("fcn1s").num_classes == 11
    assert TinyFCN("fcn4s", MnistClassifier(num_classes=4)).score_fr.out_channels == 5
    assert TinyFCN("fcn2s", num_classes=12).score_pool1.out_channels == 12
