"""tinyfcn: the FCN paper's central idea, exactly, on a net small enough to train in minutes.

An MNIST classifier (:class:`MnistClassifier`) is converted into a fully convolutional
net (:func:`convolutionalize`) and grown into the FCN variants of the paper
(:class:`TinyFCN`: ``fcn4s``, ``fcn2s``, ``fcn1s`` and the M2NIST article's decoder),
whose paddings and crops come from layer geometry (:mod:`tinyfcn.geometry`). The
training API (:func:`run`, :func:`fit` for any net, and friends) trains them on M2NIST;
``tinyfcn-train`` is its CLI. :func:`pretrained` returns the bundled trained ones.
The geometry, upsampling, conversion and metrics are shared with ``fullfcn`` (VGG16).
"""

import importlib

from tinyfcn.classifier import INPUT_SIZE, MnistClassifier
from tinyfcn.convert import convolutionalize, linear_to_conv
from tinyfcn.fcn import crop_plan, fuse, score_layer
from tinyfcn.geometry import (
    CoordMap,
    LayerGeometry,
    coord_map,
    crop,
    crop_offset,
    output_size,
    receptive_fields,
)
from tinyfcn.metrics import ConfusionMatrix, format_metrics
from tinyfcn.model import VARIANTS, TinyFCN
from tinyfcn.upsample import bilinear_kernel, upsample_layer

#: The training API and the label constants need m2nist. They are imported on first use, so
#: that the machinery above -- what ``fullfcn`` builds VGG16 FCNs with -- loads without the
#: M2NIST generator. Each name maps to the module of its concept (see :mod:`tinyfcn.train`).
_TRAIN_API = {
    name: f"tinyfcn.{module}"
    for module, names in {
        "data": ("BACKGROUND", "CLASS_NAMES", "NUM_CLASSES", "as_tensors", "load_m2nist"),
        "config": ("TrainConfig", "FitConfig"),
        "loop": ("train_classifier", "train_fcn"),
        "evaluation": ("evaluate", "evaluate_classifier", "predict"),
        "checkpoint": ("load_checkpoint", "save_checkpoint"),
        "plot": ("plot_predictions",),
        "train": ("RunResult", "run", "fit"),
        "bundled": ("pretrained",),
    }.items()
    for name in names
}


def __getattr__(name: str) -> object:
    """``tinyfcn.run`` and the rest of the training API, imported when first asked for."""
    if name in _TRAIN_API:
        return getattr(importlib.import_module(_TRAIN_API[name]), name)
    raise AttributeError(f"module 'tinyfcn' has no attribute {name!r}")


__all__ = [
    "INPUT_SIZE",
    "VARIANTS",
    "ConfusionMatrix",
    "CoordMap",
    "LayerGeometry",
    "MnistClassifier",
    "TinyFCN",
    "bilinear_kernel",
    "convolutionalize",
    "coord_map",
    "crop",
    "crop_offset",
    "crop_plan",
    "format_metrics",
    "fuse",
    "linear_to_conv",
    "output_size",
    "receptive_fields",
    "score_layer",
    "upsample_layer",
    *_TRAIN_API,
]
