"""Import of the Caffe FCN models as converted by wkentaro/pytorch-fcn.

pytorch-fcn publishes the paper's own trained models, converted from Caffe:
``fcn32s_from_caffe.pth`` (63.6 mean IU on seg11valid), ``fcn16s_from_caffe.pth`` (65.0)
and ``fcn8s_from_caffe.pth`` (65.5). Their keys are the Caffe layer names --
``conv1_1.weight``, ``fc6.weight`` (a 4096x512x7x7 conv), ``score_fr.weight``,
``score_pool4.weight``, ``upscore2.weight`` -- which are exactly the names our
:class:`~fullfcn.model.FCN` gives its modules, so importing is a check and a load. The
models expect Caffe preprocessing (BGR, mean subtraction on 0..255), which
:func:`fullfcn.builders.build` selects for them.

One trap: FCN-8s *at-once* (``fcn8s-atonce_from_caffe.pth``, pytorch-fcn's ``FCN8sAtOnce``)
has exactly FCN-8s's keys and shapes, but scales pool4 by 0.01 and pool3 by 0.0001 before
scoring them. Loaded as the other net, it runs without error and segments wrongly, so the
variant is taken only from what a file *states* (:func:`stated_variant`), never guessed.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor, nn

#: pytorch-fcn's model class names, as its trainer records them in ``"arch"``.
ARCHS = {"FCN32s": "fcn32s", "FCN16s": "fcn16s", "FCN8s": "fcn8s", "FCN8sAtOnce": "fcn8s_atonce"}
#: Where :func:`to_pytorch_fcn` records the variant and the input normalisation: the root
#: entry of the state dict's ``_metadata``, which ``torch.save`` keeps and
#: ``load_state_dict`` ignores.
VARIANT_METADATA, PREPROCESS_METADATA = "fullfcn.variant", "fullfcn.preprocess"
#: pytorch-fcn's published name of the plain FCN-8s Caffe conversion.
PUBLISHED_FCN8S = "fcn8s_from_caffe.pth"


def load_pytorch_fcn(raw: Any, source: str = "checkpoint") -> dict[str, Tensor]:
    """The state dict inside what ``torch.load`` returned: raw, or under ``model_state_dict``.

    (pytorch-fcn's training script saves ``{"model_state_dict": ..., "optim_state_dict":
    ...}``; the Caffe conversions are bare state dicts.)
    """
    if isinstance(raw, Mapping) and "model_state_dict" in raw:
        raw = raw["model_state_dict"]
    if not isinstance(raw, Mapping) or not all(isinstance(v, Tensor) for v in raw.values()):
        raise ValueError(f"{source} is not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def guess_variant(keys: Any) -> str:
    """Which FCN a state dict belongs to, from the score layers it has.

    ``"fcn8s"`` means FCN-8s *or* FCN-8s at-once: their keys are the same.
    """
    keys = set(keys)
    if "score_pool3.weight" in keys:
        return "fcn8s"
    return "fcn16s" if "score_pool4.weight" in keys else "fcn32s"


def recorded(raw: Any) -> Mapping[str, Any]:
    """What :func:`to_pytorch_fcn` recorded in a state dict's root metadata (or nothing):
    the variant and the input normalisation (``"caffe"``, ``"torchvision"``). pytorch-fcn's
    own files record none: they are the Caffe models, so Caffe's it is; but an export of a
    net trained on torchvision's normalisation must not come back as Caffe's."""
    state = raw.get("model_state_dict", raw) if isinstance(raw, Mapping) else raw
    root = (getattr(state, "_metadata", None) or {}).get("", {})
    return root if isinstance(root, Mapping) else {}


def stated_variant(raw: Any, source: str | os.PathLike[str]) -> str | None:
    """The variant a pytorch-fcn-format file states, or None when it states none.

    In order: the ``"arch"`` field of pytorch-fcn's trainer files; the variant our own
    :func:`to_pytorch_fcn` records in the state dict's metadata; then the file name, which
    decides only when it names the net: ``atonce`` in it (``fcn8s-atonce_from_caffe.pth``)
    means at-once, pytorch-fcn's published ``fcn8s_from_caffe.pth`` means plain FCN-8s.
    Keys decide FCN-32s and FCN-16s (see :func:`guess_variant`), never between the two
    FCN-8s nets.
    """
    if isinstance(raw, Mapping) and "arch" in raw:
        if raw["arch"] not in ARCHS:
            raise ValueError(f"{source}: arch {raw['arch']!r} is not one of {tuple(ARCHS)}")
        return ARCHS[raw["arch"]]
    recorded_variant = recorded(raw).get(VARIANT_METADATA)
    if recorded_variant in ARCHS.values():
        return recorded_variant
    name = Path(source).name.lower()
    if "atonce" in name.replace("-", "").replace("_", ""):
        return "fcn8s_atonce"
    return "fcn8s" if name == PUBLISHED_FCN8S else None


def check_state_dict(model: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Raise ValueError naming the first mismatch between ``state`` and ``model``."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    variant = getattr(model, "variant", type(model).__name__)
    if missing or unexpected:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected key {unexpected[0]}"
        raise ValueError(
            f"{source} does not fit {variant}: it {what} "
            f"(it looks like a {guess_variant(state)} state dict)"
        )
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ValueError(
                f"{source} does not fit {variant}: {key} has shape "
                f"{tuple(state[key].shape)}, the model needs {tuple(value.shape)}"
            )


def to_pytorch_fcn(model: nn.Module) -> dict[str, Tensor]:
    """Our model's weights as a pytorch-fcn state dict (same keys; copies on the CPU).

    The variant and the preprocessing ride along in the dict's ``_metadata`` (see
    :data:`VARIANT_METADATA`), so an exported FCN-8s at-once comes back as at-once, with
    the normalisation it was trained on, from :func:`fullfcn.load_model`, while
    pytorch-fcn's own ``load_state_dict`` still reads the file as it always did.
    """
    source = model.state_dict()
    state = OrderedDict((k, v.detach().cpu().clone()) for k, v in source.items())
    metadata = {k: dict(v) for k, v in getattr(source, "_metadata", {}).items()}
    if hasattr(model, "variant"):
        metadata.setdefault("", {})[VARIANT_METADATA] = model.variant
    if hasattr(model, "preprocess"):
        metadata.setdefault("", {})[PREPROCESS_METADATA] = model.preprocess.name
    state._metadata = metadata  # type: ignore[attr-defined]
    return state
