"""Import of the Caffe FCN models as converted by wkentaro/pytorch-fcn.

pytorch-fcn publishes the paper's own trained models, converted from Caffe:
``fcn32s_from_caffe.pth`` (63.6 mean IU on seg11valid), ``fcn16s_from_caffe.pth`` (65.0)
and ``fcn8s_from_caffe.pth`` (65.5). Their keys are the Caffe layer names --
``conv1_1.weight``, ``fc6.weight`` (a 4096x512x7x7 conv), ``score_fr.weight``,
``score_pool4.weight``, ``upscore2.weight`` -- which are exactly the names our
:class:`~fullfcn.model.FCN` gives its modules, so importing is a check and a load. The
models expect Caffe preprocessing (BGR, mean subtraction on 0..255), which
:func:`fullfcn.model.build` selects for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["check_state_dict", "guess_variant", "load_pytorch_fcn", "to_pytorch_fcn"]


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
    """Which FCN a state dict belongs to, from the score layers it has."""
    keys = set(keys)
    if "score_pool3.weight" in keys:
        return "fcn8s"
    return "fcn16s" if "score_pool4.weight" in keys else "fcn32s"


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
    """Our model's weights as a pytorch-fcn state dict (same keys; copies on the CPU)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def save_pytorch_fcn(model: nn.Module, path: str) -> None:
    """Write ``model`` in pytorch-fcn's format, loadable by its ``FCN8s.load_state_dict``."""
    torch.save(to_pytorch_fcn(model), path)
