"""The tiny FCN variants: sizes, computed crops and padding, input checks.

Crop offsets below are worked out by hand from the coordinate-map rule (output index i of
a layer sits at input ``stride*i + (k-1)/2 - pad``; a transposed conv of kernel k and
stride s maps output o to input ``o/s - (k-1)/(2s)``) and compared with what the model
computed. With conv1 padded by P, the maps (stride, offset of output 0) are:

    conv1 (k5, pad P)   s1  2 - P
    pool1 (k2)          s2  2 - P + 1/2       = 2.5 - P
    conv2 (k3)          s2  2.5 - P + 2*1     = 4.5 - P
    pool2 (k2)          s4  4.5 - P + 2*1/2   = 5.5 - P
    fc (k5, dense32)    s4  5.5 - P + 4*2     = 13.5 - P   (score_fr is 1x1: unchanged)

fcn4s:   upscore4 (k8 s4): 13.5 - P - 4*(7/8)                = 10 - P  -> crop P - 10
fcn2s:   upscore2 (k4 s2): 13.5 - P - 4*(3/4)                = 10.5 - P
         score_pool1 crop: ((10.5 - P) - (2.5 - P)) / 2      = 4
         upscore_pool1 (k4 s2): 10.5 - P - 2*(3/4)           = 9 - P   -> crop P - 9
fcn1s:   as fcn2s, and score_conv1 crop: (9 - P) - (2 - P)   = 7
article: upscore2 (k4 s2) on pool2: 5.5 - P - 4*(3/4)        = 2.5 - P
         upscore2_k6 (k6 s2): 2.5 - P - 2*(5/4)              = -P      -> crop P

Minimal padding: with n = H + 2P the final map has 4*floor(n/4) - 20 pixels (fcn4s),
4*floor(n/4) - 18 (fcn2s, fcn1s) and 4*floor(n/4) (article); it must hold the crop plus H
for every H >= 28, and floor loses up to 3 when H + 2P = 3 (mod 4). So
fcn4s:  H + 2P - 3 - 20 >= P - 10 + H  ->  P >= 13, crop 3;
fcn2s/fcn1s:  H + 2P - 3 - 18 >= P - 9 + H  ->  P >= 12, crop 3;
article:  H + 2P - 3 >= P + H  ->  P >= 3, crop 3.
"""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from tests.model_checks import ModelChecks
from tinyfcn import MnistClassifier, TinyFCN, convolutionalize
from tinyfcn.classifier import INPUT_SIZE

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


def test_one_less_padding_fails_somewhere() -> None:
    """The computed padding is minimal: one pixel less leaves some size uncovered."""
    for variant in ("fcn4s", "fcn2s", "fcn1s", "article"):
        model = TinyFCN(variant)
        model._set_padding(model.padding - 1)
        with pytest.raises((ValueError, RuntimeError)):
            for h in range(28, 36):
                model(torch.zeros(1, 1, h, h))


def test_score_fr_keeps_the_classifier_digits() -> None:
    """On a lone digit the converted net's digit scores are the classifier's logits
    (up to the background row), once the padding is taken away."""
    torch.manual_seed(1)
    classifier = MnistClassifier().eval()
    model = TinyFCN("fcn4s", classifier).eval()
    model._set_padding(0)
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
