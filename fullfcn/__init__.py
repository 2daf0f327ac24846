"""VGG16 FCN-32s/16s/8s on PASCAL VOC or your own folder of images and masks, built with
tinyfcn's conversion, geometry, upsampling and metrics (Long, Shelhamer & Darrell, CVPR 2015).

>>> import fullfcn
>>> model = fullfcn.fcn8s(weights="imagenet")          # doctest: +SKIP
>>> model.crop_offsets                                  # doctest: +SKIP
{'score_pool4': 5, 'score_pool3': 9, 'upscore8': 31}
"""

from fullfcn.builders import build, fcn8s, fcn8s_atonce, fcn16s, fcn32s, load_model
from fullfcn.folder import SegmentationFolder
from fullfcn.model import FCN, VARIANTS
from fullfcn.transforms import CAFFE, TORCHVISION, Preprocess
from fullfcn.voc import VOC_CLASSES, VOCSegmentation

__all__ = [
    "CAFFE",
    "FCN",
    "TORCHVISION",
    "VARIANTS",
    "VOC_CLASSES",
    "Preprocess",
    "SegmentationFolder",
    "VOCSegmentation",
    "build",
    "fcn8s",
    "fcn8s_atonce",
    "fcn16s",
    "fcn32s",
    "load_model",
]
