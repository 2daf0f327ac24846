"""FCN-32s, FCN-16s and FCN-8s built from torchvision's VGG16 with tinyfcn's machinery.

The recipe is the paper's (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
Semantic Segmentation", CVPR 2015 / PAMI 2016), step by step:

1. *Convolutionalize* the ImageNet classifier: fc6 reads a 7x7x512 map at 224x224, so it
   becomes a 7x7 convolution; fc7 becomes 1x1 (``tinyfcn.convert.convolutionalize``). The
   1000-way fc8 is dropped and a 1x1 ``score_fr`` predicts the task's classes instead.
2. *Pad conv1_1 by 100* so that fc6's 7x7 valid convolution still fires on small images
   (any input from 1 pixel up yields at least one score), and let pooling round *up*
   (Caffe's rule), so no border column is lost.
3. *Upsample in-network* with transposed convolutions initialised to bilinear
   interpolation (``tinyfcn.upsample``), then *crop* to the input. The padding shifted
   every map; the crops that undo it come from the layer arithmetic: 19 for FCN-32s, 5 and
   27 for FCN-16s, 5, 9 and 31 for FCN-8s.
4. *Skip layers* (sec. 4.2): zero-initialised scores of pool4 (stride 16) and pool3
   (stride 8) are added to the 2x upsampled coarse scores: "combining what and where".

Steps 3 and 4 -- score layers, fusion, crop plan -- are the tiny nets' own code
(:mod:`tinyfcn.fcn`). The class count, names and colours are the caller's: building a net
with weights (VOC's classes by default) and loading stored ones is :mod:`fullfcn.builders`.

Modules carry the reference implementation's names (``conv1_1`` ... ``fc7``, ``score_fr``,
``upscore2`` ...), derived by walking the VGG layers, so the state dict uses the same
keys as the Caffe-converted checkpoints that wkentaro/pytorch-fcn publishes.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

import torchvision
from torch import Tensor, nn
from torchvision.models.vgg import cfgs, make_layers

from fullfcn.transforms import TORCHVISION, Preprocess
from tinyfcn.convert import convolutionalize
from tinyfcn.fcn import CropPaths, crop_plan, fuse, score_layer
from tinyfcn.geometry import crop
from tinyfcn.upsample import upsample_layer

VARIANTS = ("fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce")
#: Channel divisors that keep every VGG width whole (64 channels in conv1 / 64 = 1).
WIDTH_DIVISORS = (1, 2, 4, 8, 16, 32, 64)


def paper_named_layers(backbone: nn.Sequential) -> Iterator[tuple[str, nn.Module]]:
    """Name the layers of a convolutionalised VGG as the paper's nets do.

    Walking ``features``, the block number goes up after each max-pool: ``conv3_2`` is the
    second conv of block 3, ``relu3_2`` its ReLU, ``pool3`` the pool closing the block.
    In ``classifier`` the convs continue the layer count as ``fc6``, ``fc7`` (with
    ``relu6``, ``drop6`` ...) because that is what they were.
    """
    block, index = 1, 0
    for module in backbone.features:
        if isinstance(module, nn.Conv2d):
            index += 1
            yield f"conv{block}_{index}", module
        elif isinstance(module, nn.ReLU):
            yield f"relu{block}_{index}", module
        elif isinstance(module, nn.MaxPool2d):
            yield f"pool{block}", module
            block, index = block + 1, 0
        else:
            raise TypeError(f"unexpected VGG feature layer {module}")
    fc = block - 1  # after pool5 comes fc6
    for module in backbone.classifier:
        if isinstance(module, nn.Conv2d):
            fc += 1
            yield f"fc{fc}", module
        elif isinstance(module, nn.ReLU):
            yield f"relu{fc}", module
        elif isinstance(module, nn.Dropout):
            yield f"drop{fc}", module
        else:
            raise TypeError(f"unexpected VGG classifier layer {module}")


def _vgg16(imagenet: bool, width_divisor: int) -> nn.Module:
    """torchvision's VGG16 up to fc7 (fc8 dropped), or the same geometry with every width
    divided (for tests): all kernels, strides and pools -- hence every crop offset and
    output size -- stay, only the channels are fewer, so it runs fast on a CPU."""
    if width_divisor == 1:
        weights = torchvision.models.VGG16_Weights.IMAGENET1K_V1 if imagenet else None
        vgg = torchvision.models.vgg16(weights=weights)
        vgg.classifier = vgg.classifier[:-1]
        return vgg
    if imagenet:
        raise ValueError("ImageNet weights exist only for the full-width VGG16 (width_divisor=1)")
    layout = [v if v == "M" else v // width_divisor for v in cfgs["D"]]
    fc = 4096 // width_divisor
    return nn.Sequential(
        OrderedDict(
            features=make_layers(layout),
            classifier=nn.Sequential(
                *(nn.Linear(layout[-2] * 7 * 7, fc), nn.ReLU(inplace=True), nn.Dropout()),
                *(nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout()),
            ),
        )
    )


class FCN(nn.Module):
    """A VGG16 FCN: the paper's layer names, ``crop_offsets`` from geometry, skip fusion.

    The VGG layers (``conv1_1`` ... ``drop7``) are registered on the net itself, not in a
    container, so the state dict keys are pytorch-fcn's (``conv1_1.weight``, ``fc7.bias``,
    ``score_pool4.weight`` ...) and its Caffe checkpoints load as they are. :meth:`trunk`
    gives the same layers as one callable ``nn.Sequential``.

    Attributes: ``variant`` (``fcn32s`` ...), ``num_classes``, ``crop_offsets`` (crop of
    each score map, by the layer whose output is cropped), ``preprocess`` (the input
    normalisation the loaded weights expect), ``width_divisor``, ``classes`` (a name per
    score channel; ``"0"``, ``"1"`` ... unless given) and ``palette`` (flat RGB list drawing
    class ``c`` in colour ``c``; ``None``: VOC's colour map), ``mask_values`` (the mask
    value of each class when the training masks did not store class ids, e.g. ``(0, 255)``;
    ``None``: they did). All three are kept in checkpoints for ``fullfcn-predict``.
    """

    def __init__(
        self,
        variant: str,
        num_classes: int,
        *,
        classes: Sequence[str] | None = None,
        palette: list[int] | None = None,
        imagenet: bool = False,
        width_divisor: int = 1,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
        if width_divisor not in WIDTH_DIVISORS:
            raise ValueError(f"width_divisor {width_divisor!r} is not one of {WIDTH_DIVISORS}")
        self.variant, self.num_classes, self.width_divisor = variant, num_classes, width_divisor
        self.preprocess: Preprocess = TORCHVISION
        self.classes = tuple(classes) if classes else tuple(map(str, range(num_classes)))
        self.palette = palette
        self.mask_values: tuple[int, ...] | None = None
        # 224x224, the size the VGG16 classifier was trained on, fixes fc6's kernel (7x7)
        backbone = convolutionalize(_vgg16(imagenet, width_divisor), (224, 224))
        layers = list(paper_named_layers(backbone))
        for name, module in layers:
            if isinstance(module, nn.MaxPool2d):
                module.ceil_mode = True  # Caffe rounds up: border pixels keep a score
            self.add_module(name, module)
        self.conv1_1.padding = (100, 100)  # Caffe VGG's, in the FCN nets (step 2 above)
        self._trunk_names = tuple(name for name, _ in layers)
        # The forward's three stretches of the trunk, kept in a plain tuple: views of the
        # layers above, so they add no state dict keys.
        trunk = self.trunk()
        after_pool3 = self._trunk_names.index("pool3") + 1
        after_pool4 = self._trunk_names.index("pool4") + 1
        self._stages = (trunk[:after_pool3], trunk[after_pool3:after_pool4], trunk[after_pool4:])
        # FCN-8s "at-once" trains all streams together from VGG16; the reference net scales
        # the pool features so their scores start on the deep stream's scale (sec. 4.2 / PAMI).
        atonce = variant == "fcn8s_atonce"
        self.pool4_scale, self.pool3_scale = (0.01, 0.0001) if atonce else (1.0, 1.0)

        # Zero scores: a new skip starts out adding nothing, so FCN-16s begins as exactly
        # its FCN-32s parent (the paper's staged training). Upsamplers are frozen bilinear.
        self.score_fr = score_layer(self.fc7.out_channels, num_classes)
        if variant == "fcn32s":
            self.upscore = upsample_layer(num_classes, 32)
        elif variant == "fcn16s":
            self.score_pool4 = score_layer(self.conv4_3.out_channels, num_classes)
            self.upscore2 = upsample_layer(num_classes, 2)
            self.upscore16 = upsample_layer(num_classes, 16)
        else:
            self.score_pool4 = score_layer(self.conv4_3.out_channels, num_classes)
            self.score_pool3 = score_layer(self.conv3_3.out_channels, num_classes)
            self.upscore2 = upsample_layer(num_classes, 2)
            self.upscore_pool4 = upsample_layer(num_classes, 2)
            self.upscore8 = upsample_layer(num_classes, 8)
        self.crop_offsets = crop_plan(self.crop_paths())

    def trunk(self) -> nn.Sequential:
        """The convolutionalised VGG16, ``conv1_1`` ... ``drop7``, as one ``nn.Sequential``.

        A view, not a copy: it holds this net's own layers under their paper names, so
        ``model.trunk()(x)`` gives fc7's features and ``receptive_fields(model.trunk())``
        names its rows ``conv1_1``, ``pool1`` ...
        """
        return nn.Sequential(OrderedDict((name, getattr(self, name)) for name in self._trunk_names))

    def crop_paths(self) -> CropPaths:
        """For each crop, the layers (from the image) to the map that is cropped and to the
        map it must line up with (:func:`tinyfcn.fcn.crop_plan`); ``[]`` is the image."""
        to_pool3, to_pool4, to_fc7 = self._stages
        score_fr = [to_pool3, to_pool4, to_fc7, self.score_fr]  # 1/32
        if self.variant == "fcn32s":
            return {"upscore": ([*score_fr, self.upscore], [])}
        upscore2 = [*score_fr, self.upscore2]  # 1/16
        paths = {"score_pool4": ([to_pool3, to_pool4, self.score_pool4], upscore2)}
        if self.variant == "fcn16s":
            return {**paths, "upscore16": ([*upscore2, self.upscore16], [])}
        upscore_pool4 = [*upscore2, self.upscore_pool4]  # 1/8
        paths["score_pool3"] = ([to_pool3, self.score_pool3], upscore_pool4)
        return {**paths, "upscore8": ([*upscore_pool4, self.upscore8], [])}

    def forward(self, x: Tensor) -> Tensor:
        """The paper's figure 3, top to bottom: each variant stops at its own final upsampler."""
        to_pool3, to_pool4, to_fc7 = self._stages
        offsets = self.crop_offsets
        pool3 = to_pool3(x)  # 1/8
        pool4 = to_pool4(pool3)  # 1/16
        h = self.score_fr(to_fc7(pool4))  # 1/32: coarse class scores ("what")
        if self.variant == "fcn32s":
            return crop(self.upscore(h), offsets["upscore"], x.shape[-2:])  # 1/1

        h = self.upscore2(h)  # 1/16
        h = fuse(h, self.score_pool4(pool4 * self.pool4_scale), offsets["score_pool4"])  # "where"
        if self.variant == "fcn16s":
            return crop(self.upscore16(h), offsets["upscore16"], x.shape[-2:])  # 1/1

        h = self.upscore_pool4(h)  # 1/8
        h = fuse(h, self.score_pool3(pool3 * self.pool3_scale), offsets["score_pool3"])
        return crop(self.upscore8(h), offsets["upscore8"], x.shape[-2:])  # 1/1

    def extra_repr(self) -> str:
        return f"variant={self.variant}, crop_offsets={self.crop_offsets}"
