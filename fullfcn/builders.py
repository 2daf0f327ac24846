"""Build an FCN with its weights, and load a stored one, checked before anything is built.

:class:`fullfcn.model.FCN` is the architecture; here are the ways to a net with weights:
``build(variant, weights=...)`` and the per-variant builders ``fcn32s()`` ... (random,
ImageNet VGG16, or a file), ``staged_init`` (FCN-16s from FCN-32s, ...), and
``load_model(path)``, which reads the variant, width and class count from the file itself.
Every file goes through :func:`read_weights` (``weights_only=True``: no pickled code runs)
and is validated key by key, so a wrong file is one readable line, not a ``KeyError``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import torch
from torch import Tensor

from fullfcn.model import FCN, VARIANTS, WIDTH_DIVISORS
from fullfcn.pytorch_fcn import (
    PREPROCESS_METADATA,
    check_state_dict,
    guess_variant,
    load_pytorch_fcn,
    recorded,
    stated_variant,
)
from fullfcn.transforms import CAFFE, PREPROCESS, Preprocess
from fullfcn.voc import NUM_CLASSES, VOC_CLASSES, voc_palette


def check_stage(source: FCN, variant: str, num_classes: int) -> None:
    """Refuse to start a ``variant`` scoring ``num_classes`` from ``source`` (staged
    training shares ``score_fr``, so the class count must be the same)."""
    if source.num_classes != num_classes:
        raise ValueError(
            f"the {source.variant} to start from scores {source.num_classes} classes, the "
            f"{variant} to train {num_classes}: staged training keeps the classes"
        )


def staged_init(target: FCN, source: FCN) -> FCN:
    """Initialise ``target`` from a coarser trained net (FCN-16s from FCN-32s, ...).

    Every parameter the two share (the whole VGG trunk, ``score_fr``) is copied; the new
    skip scores stay zero, so the finer net starts out computing exactly the coarser
    net's output and training only has to learn the refinement (paper sec. 4.2). The
    stages share ``score_fr``, so they must score the same classes: another count is
    refused rather than leaving ``score_fr`` silently uninitialised.
    """
    check_stage(source, target.variant, target.num_classes)
    source_state = source.state_dict()
    with torch.no_grad():
        for key, value in target.state_dict().items():
            if key in source_state and source_state[key].shape == value.shape:
                value.copy_(source_state[key])
    for what in ("preprocess", "classes", "palette", "mask_values"):  # the same input, labels
        setattr(target, what, getattr(source, what))
    return target


def build(
    variant: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    num_classes: int = NUM_CLASSES,
    init_from: FCN | None = None,
    width_divisor: int = 1,
) -> FCN:
    """Build ``variant`` with ``weights``:

    - ``None``: VGG16 randomly initialised (torchvision's init), zero score layers;
    - ``"imagenet"``: VGG16 ImageNet weights through torchvision's weights API
      (``VGG16_Weights.IMAGENET1K_V1``; downloaded once when online) -- the paper's start;
    - a path to a pytorch-fcn ``fcnXs_from_caffe.pth`` (the Caffe models converted) or to a
      checkpoint written by ``fullfcn-train``.

    ``init_from`` copies a coarser FCN's weights in (staged training). The model's
    ``preprocess`` follows the weights' origin: Caffe (BGR, mean only) for pytorch-fcn
    checkpoints, torchvision (RGB, mean/std) otherwise.
    """
    imagenet = weights == "imagenet"
    model = _voc_fcn(variant, num_classes, imagenet=imagenet, width_divisor=width_divisor)
    if init_from is not None:
        staged_init(model, init_from)
    if weights is not None and not imagenet:
        load_into(model, read_stored(read_weights(weights), str(weights)), str(weights))
    return model


def read_weights(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one clear error when it fails.

    Every weights file fullfcn opens -- pytorch-fcn's, ours, a checkpoint to resume --
    goes through here, so no pickled code runs and a wrong file is one readable line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors all mean "not weights"
        raise ValueError(
            f"{path} is not a PyTorch weights file (torch.load with weights_only=True refused it)"
        ) from err


@dataclass(frozen=True)
class Stored:
    """What a weights file says about the net it holds, checked before anything is built."""

    state: dict[str, Tensor]
    variant: str | None  # None: the file does not say (see pytorch_fcn.stated_variant)
    preprocess: Preprocess
    width_divisor: int
    num_classes: int
    classes: tuple[str, ...] | None = None  # None: the file does not say (VOC's then)
    palette: list[int] | None = None
    mask_values: tuple[int, ...] | None = None  # None: the masks stored class ids
    trained_on: tuple[str, ...] | None = None  # the folder's pairs it was trained on ...
    trained_in: str | None = None  # ... and the folder, resolved


def _labels(raw: Mapping[str, Any], num_classes: int, source: str) -> dict[str, Any]:
    """The class names, palette, mask values and training pairs a ``fullfcn-train``
    checkpoint stores, each checked to be what it must be (absent ones: the file does not
    say)."""
    lists = {  # key: (item type, length or None, what it must be)
        "classes": (str, num_classes, f"{num_classes} class names, one a score channel"),
        "palette": (int, 768, "768 values 0..255 (256 RGB colours)"),
        "mask_values": (int, num_classes, f"{num_classes} mask values 0..255"),
        "trained_on": (str, None, "a list of stems"),
    }
    labels: dict[str, Any] = {}
    for key, (kind, length, what) in lists.items():
        value = raw.get(key)
        if value is None:
            continue
        if not (
            isinstance(value, list | tuple)
            and length in (None, len(value))
            and all(isinstance(v, kind) and (kind is str or 0 <= v <= 255) for v in value)
        ):
            raise ValueError(f"{source}: {key!r} is not {what}")
        labels[key] = list(value) if key == "palette" else tuple(value)
    folder = raw.get("trained_in")
    if folder is not None and not isinstance(folder, str):
        raise ValueError(f"{source}: 'trained_in' is not a folder")
    return {**labels, "trained_in": folder}


def _num_classes(state: dict[str, Tensor], source: str) -> int:
    bias = state.get("score_fr.bias")
    if bias is None:
        raise ValueError(f"{source} lacks score_fr.bias: it is not a complete FCN state dict")
    if bias.ndim != 1 or bias.numel() == 0:
        raise ValueError(f"{source}: score_fr.bias has shape {tuple(bias.shape)}, not (classes,)")
    return int(bias.shape[0])


def read_stored(raw: Any, source: str) -> Stored:
    """Our ``fullfcn-train`` checkpoint or a pytorch-fcn file (what :func:`read_weights`
    read from ``source``), validated key by key.

    A file that loads but lacks a key must be one line naming the file and the key, not a
    ``KeyError`` (or a ``ZeroDivisionError`` from ``width_divisor=0``) deep in the build.
    """
    if isinstance(raw, Mapping) and ("variant" in raw or "model" in raw):  # ours
        for key in ("variant", "model", "preprocess", "width_divisor"):
            if key not in raw:
                raise ValueError(f"{source} lacks {key!r}: not a complete fullfcn-train checkpoint")
        choices = dict(variant=VARIANTS, preprocess=tuple(PREPROCESS), width_divisor=WIDTH_DIVISORS)
        for key, values in choices.items():
            if raw[key] not in values:
                raise ValueError(f"{source}: {key} {raw[key]!r} is not one of {values}")
        state = load_pytorch_fcn(raw["model"], f"{source} ('model')")
        num_classes = _num_classes(state, source)
        return Stored(
            state,
            raw["variant"],
            PREPROCESS[raw["preprocess"]],
            raw["width_divisor"],
            num_classes,
            **_labels(raw, num_classes, source),
        )
    state = load_pytorch_fcn(raw, source)
    # pytorch-fcn's files are the full VGG16; our own exports of a thinner net say how
    # thin through conv1_1's width (64 channels divided by the divisor).
    first = state.get("conv1_1.weight")
    channels = first.shape[0] if first is not None and first.ndim == 4 else 64
    width = 64 // channels if channels and 64 % channels == 0 else 1
    preprocess = recorded(raw).get(PREPROCESS_METADATA)
    if preprocess is not None and preprocess not in PREPROCESS:
        raise ValueError(f"{source}: preprocess {preprocess!r} is not one of {tuple(PREPROCESS)}")
    return Stored(
        state,
        stated_variant(raw, source),
        PREPROCESS[preprocess] if preprocess else CAFFE,
        width,
        _num_classes(state, source),
    )


def load_into(model: FCN, stored: Stored, source: str) -> FCN:
    """Load checked weights into ``model``, refusing a file that states another variant."""
    if stored.variant is not None and stored.variant != model.variant:
        raise ValueError(f"{source} holds a {stored.variant} model, not {model.variant}")
    check_state_dict(model, stored.state, source)
    model.load_state_dict(stored.state)
    model.preprocess = stored.preprocess
    for what in ("classes", "palette", "mask_values"):  # None: the file does not say
        if getattr(stored, what) is not None:
            setattr(model, what, getattr(stored, what))
    return model


def load_model(path: str | os.PathLike[str], variant: str | None = None) -> FCN:
    """The FCN stored in ``path``, its variant (and width, class count) read from the file
    (:func:`load_checkpoint` without what the file says beside the model)."""
    return load_checkpoint(path, variant)[0]


def load_checkpoint(path: str | os.PathLike[str], variant: str | None = None) -> tuple[FCN, Stored]:
    """The FCN stored in ``path`` and what the file says about it (:class:`Stored`).

    ``variant`` states what the caller expects; a file holding another variant is an
    error naming both. FCN-8s and FCN-8s at-once have the very same keys and shapes but
    compute different outputs (at-once scales the pool features), so a file that does not
    say which it is (see :func:`fullfcn.pytorch_fcn.stated_variant`) is refused unless
    ``variant`` chooses: guessing would give a silently wrong segmentation.
    """
    stored = read_stored(read_weights(path), str(path))
    found = stored.variant or guess_variant(stored.state)
    if found == "fcn8s" and stored.variant is None:  # the keys fit both FCN-8s nets
        if variant is None:
            raise ValueError(
                f"{path} holds FCN-8s weights and does not say whether they are fcn8s or "
                "fcn8s_atonce (same keys, different outputs); give --variant fcn8s or "
                "--variant fcn8s_atonce"
            )
        if variant in ("fcn8s", "fcn8s_atonce"):
            found = variant
    if variant is not None and variant != found:
        raise ValueError(f"{path} holds a {found} model, not {variant}")
    model = _voc_fcn(found, stored.num_classes, width_divisor=stored.width_divisor)
    return load_into(model, stored, str(path)), stored


def _voc_fcn(variant: str, num_classes: int, **options: Any) -> FCN:
    """An :class:`FCN` whose classes are named and coloured as VOC's unless told otherwise
    (a 21-class net scores VOC's classes; training and checkpoints set their own)."""
    classes = VOC_CLASSES if num_classes == NUM_CLASSES else None
    return FCN(variant, num_classes, classes=classes, palette=voc_palette(), **options)


class BuildOptions(TypedDict, total=False):
    """The keyword arguments every per-variant builder passes on to :func:`build`."""

    weights: str | os.PathLike[str] | None
    num_classes: int
    init_from: FCN | None
    width_divisor: int


def fcn32s(**options: Unpack[BuildOptions]) -> FCN:
    """FCN-32s: the coarse scores upsampled 32x in one step (options: :func:`build`)."""
    return build("fcn32s", **options)


def fcn16s(**options: Unpack[BuildOptions]) -> FCN:
    """FCN-16s: FCN-32s plus pool4's scores at stride 16; ``init_from`` an FCN-32s
    (options: :func:`build`)."""
    return build("fcn16s", **options)


def fcn8s(**options: Unpack[BuildOptions]) -> FCN:
    """FCN-8s: FCN-16s plus pool3's scores at stride 8; ``init_from`` an FCN-16s
    (options: :func:`build`)."""
    return build("fcn8s", **options)


def fcn8s_atonce(**options: Unpack[BuildOptions]) -> FCN:
    """FCN-8s trained in one go from VGG16: pool4 and pool3 features scaled by 0.01 and
    0.0001 so their scores start on the deep stream's scale (PAMI version; options:
    :func:`build`)."""
    return build("fcn8s_atonce", **options)
