"""The tiny FCNs: the MNIST classifier, convolutionalized, segments M2NIST.

Every variant starts from :class:`~tinyfcn.classifier.MnistClassifier` (trained, or fresh
for the ablation), runs its ``features`` on the whole image and reads the coarse class
scores off the converted dense layers, exactly as FCN reads them off VGG16's fc6/fc7.
The variants are the paper's, scaled down to a net whose deepest stride is 4:

==========  ==================  ============================================================
variant     paper analogue      decoder
==========  ==================  ============================================================
``fcn4s``   FCN-32s             ``score_fr`` (stride 4) -> ``upscore4`` -> crop
``fcn2s``   FCN-16s             ``upscore2`` + ``score_pool1`` (stride 2) -> ``upscore_pool1``
``fcn1s``   FCN-8s              ... + ``score_conv1`` (stride 1, the input resolution)
``article`` the M2NIST article  dense32 thrown away: fresh 1x1 ``fc`` + two transposed convs
==========  ==================  ============================================================

Nothing about alignment is typed in. The minimal zero padding of ``conv1`` (the analogue
of the paper's ``pad: 100`` on conv1_1) and every crop offset are computed from the layer
geometry (:mod:`tinyfcn.geometry`) when the net is built; they are exposed as
``model.padding`` and ``model.crop_offsets``. The score layers, the skip fusion and the crop
plan are the VGG16 nets' too (:mod:`tinyfcn.fcn`).

What the code computes can be checked by hand (tests/tinyfcn/test_model.py compares the
two). Output index i of a layer sits at input ``stride*i + (k-1)/2 - pad``; a transposed
conv of kernel k and stride s maps output o to input ``o/s - (k-1)/(2s)``. With conv1
padded by P, the maps (stride, offset of output 0) are::

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

The least padding: with n = H + 2P the final map has 4*floor(n/4) - 20 pixels (fcn4s),
4*floor(n/4) - 18 (fcn2s, fcn1s) and 4*floor(n/4) (article); it must hold the crop plus H
for every H >= 28, and floor loses up to 3 when H + 2P = 3 (mod 4). So::

    fcn4s:        H + 2P - 3 - 20 >= P - 10 + H  ->  P >= 13, crop 3
    fcn2s, fcn1s: H + 2P - 3 - 18 >= P - 9 + H   ->  P >= 12, crop 3
    article:      H + 2P - 3 >= P + H            ->  P >= 3,  crop 3
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from tinyfcn.classifier import INPUT_SIZE, MnistClassifier
from tinyfcn.convert import convolutionalize
from tinyfcn.fcn import CropPaths, crop_plan, fuse, score_layer
from tinyfcn.geometry import coord_map, crop, output_size
from tinyfcn.upsample import upsample_layer

VARIANTS = ("fcn4s", "fcn2s", "fcn1s", "article")
MIN_SIZE = min(INPUT_SIZE)  # the classifier's input: the smallest image a variant must handle
_MAX_PADDING = 64  # far beyond any padding these nets need; a guard against a search bug


class TinyFCN(nn.Module):
    """One tiny FCN variant, built from an (optionally trained) MNIST classifier.

    ``classifier=None`` builds from a freshly initialised classifier: the "no pretrained
    weights" ablation. ``num_classes`` defaults to the classifier's classes plus one, the
    background. ``learnable_upsampling`` (the default, as in :class:`TrainConfig` and the
    paper) makes the transposed convolutions trainable; they start bilinear either way, and
    ``False`` keeps them so (the frozen ablation). Inputs are ``(N, 1, H, W)`` images scaled
    to [0, 1] with ``H, W >= 28``; outputs are ``(N, num_classes, H, W)`` scores.
    """

    def __init__(
        self,
        variant: str = "fcn1s",
        classifier: MnistClassifier | None = None,
        *,
        num_classes: int | None = None,
        learnable_upsampling: bool = True,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        source = classifier if classifier is not None else MnistClassifier()
        fcn = convolutionalize(source, INPUT_SIZE)
        conv1, relu1, pool1, conv2, relu2, pool2 = fcn.features
        fc, relu_fc, dense10 = fcn.classifier
        width = conv1.out_channels
        num_classes = num_classes or dense10.out_channels + 1  # the digits and the background
        self.variant, self.num_classes = variant, num_classes
        self.learnable_upsampling = learnable_upsampling

        self.conv1 = nn.Sequential(conv1, relu1)  # 1/1 (padding set below)
        self.pool1 = pool1  # 1/2
        self.conv2 = nn.Sequential(conv2, relu2)
        self.pool2 = pool2  # 1/4
        up = learnable_upsampling
        if variant == "article":
            # The article kept the convolutions but threw dense32 away for a fresh 1x1 conv,
            # so the 5x5 window the classifier learned to read is lost.
            self.fc = nn.Sequential(nn.Conv2d(width, fc.out_channels, 1), nn.ReLU(inplace=True))
            self.score_fr = nn.Conv2d(fc.out_channels, num_classes, 1)
            self.upscore2 = upsample_layer(num_classes, 2, learnable=up)  # 1/2
            self.upscore2_k6 = upsample_layer(num_classes, 2, learnable=up, kernel_size=6)  # 1/1
        else:
            self.fc = nn.Sequential(fc, relu_fc)  # dense32 as a 5x5 conv: the paper's fc6
            self.score_fr = self._score_fr(dense10, num_classes)
            if variant == "fcn4s":
                self.upscore4 = upsample_layer(num_classes, 4, learnable=up)  # 1/1
            else:
                self.upscore2 = upsample_layer(num_classes, 2, learnable=up)  # 1/2
                self.score_pool1 = score_layer(width, num_classes)
                self.upscore_pool1 = upsample_layer(num_classes, 2, learnable=up)  # 1/1
                if variant == "fcn1s":
                    self.score_conv1 = score_layer(width, num_classes)
        self.padding = self._minimal_padding()
        self.crop_offsets = crop_plan(self.crop_paths())

    @staticmethod
    def _score_fr(dense10: nn.Conv2d, num_classes: int) -> nn.Conv2d:
        """The classifier's last layer, widened by zero-initialised rows for new classes.

        The paper replaces fc8 by a fresh 21-class scorer because VOC's classes are not
        ImageNet's. Here the ten digit classes *are* the classifier's, so their rows are
        kept -- the converted net already scores digits -- and only background is new.
        """
        if num_classes < dense10.out_channels:
            raise ValueError(
                f"num_classes={num_classes} is fewer than the classifier's {dense10.out_channels}"
            )
        score = score_layer(dense10.in_channels, num_classes)
        with torch.no_grad():
            score.weight[: dense10.out_channels] = dense10.weight
            score.bias[: dense10.out_channels] = dense10.bias
        return score

    def crop_paths(self) -> CropPaths:
        """For each crop, the layers (from the image) to the map that is cropped and to the
        map it must line up with (:func:`tinyfcn.fcn.crop_plan`); ``[]`` is the image."""
        pool1 = [self.conv1, self.pool1]
        score_fr = [*pool1, self.conv2, self.pool2, self.fc, self.score_fr]
        if self.variant == "fcn4s":
            return {"score": ([*score_fr, self.upscore4], [])}
        if self.variant == "article":
            return {"score": ([*score_fr, self.upscore2, self.upscore2_k6], [])}
        upscore2 = [*score_fr, self.upscore2]
        final = [*upscore2, self.upscore_pool1]
        paths = {"score_pool1": ([*pool1, self.score_pool1], upscore2)}
        if self.variant == "fcn1s":
            paths["score_conv1"] = ([self.conv1, self.score_conv1], final)
        return {**paths, "score": (final, [])}

    def _minimal_padding(self) -> int:
        """The least ``conv1`` zero padding for which all crops are valid at every size >= 28.

        Growing the input by the net's total stride grows every map by exactly one step of
        its own stride, so whether a size works depends only on the size modulo the stride:
        checking one period of sizes from 28 up proves it for all larger sizes.
        """
        stride = coord_map([self.conv1, self.pool1, self.conv2, self.pool2]).stride
        paths = self.crop_paths()
        sizes = [(n, n) for n in range(MIN_SIZE, MIN_SIZE + int(stride))]
        for padding in range(_MAX_PADDING):
            self.conv1[0].padding = (padding, padding)
            try:
                offsets = crop_plan(paths)
            except ValueError:  # a negative crop: the padding is still too small
                continue
            # every cropped map must hold its window (sizes from layer arithmetic alone)
            if all(
                output_size(src, n)[0] >= offsets[name] + output_size(ref, n)[0]
                for name, (src, ref) in paths.items()
                for n in sizes
            ):
                return padding
        raise RuntimeError(f"no conv1 padding below {_MAX_PADDING} aligns {self.variant}")

    def check_input(self, x: Tensor) -> None:
        """Reject what the net cannot segment, with a message that says why."""
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"expected a (N, 1, H, W) batch of images, got {shape}")
        in_channels = self.conv1[0].in_channels
        if x.shape[1] != in_channels:
            raise ValueError(f"expected {in_channels} input channel(s), got {x.shape[1]}")
        if min(x.shape[-2:]) < MIN_SIZE:
            raise ValueError(
                f"images must be at least {MIN_SIZE}x{MIN_SIZE} (one digit), "
                f"got {tuple(x.shape[-2:])}"
            )
        if not x.is_floating_point():
            raise ValueError(f"expected float images scaled to [0, 1], got {x.dtype}")

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        offsets = self.crop_offsets
        conv1 = self.conv1(x)  # 1/1
        pool1 = self.pool1(conv1)  # 1/2
        h = self.score_fr(self.fc(self.pool2(self.conv2(pool1))))  # 1/4: the digits ("what")
        if self.variant == "fcn4s":
            h = self.upscore4(h)  # 1/1
        elif self.variant == "article":
            h = self.upscore2_k6(self.upscore2(h))  # 1/2, then 1/1
        else:
            h = self.upscore2(h)  # 1/2
            h = fuse(h, self.score_pool1(pool1), offsets["score_pool1"])  # "where"
            h = self.upscore_pool1(h)  # 1/1
            if self.variant == "fcn1s":
                h = fuse(h, self.score_conv1(conv1), offsets["score_conv1"])
        return crop(h, offsets["score"], x.shape[-2:])

    def config(self) -> dict[str, object]:
        """Plain-Python description that rebuilds this architecture (for checkpoints)."""
        return {k: getattr(self, k) for k in ("variant", "num_classes", "learnable_upsampling")}
