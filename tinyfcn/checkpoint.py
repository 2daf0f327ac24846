"""Checkpoints: a trained (or half-trained) net that can be shared, reloaded and resumed.

A checkpoint is ``{"format", "config", "model", "state_dict", "train_state"}``: plain Python
and tensors only, so :func:`load_checkpoint` opens it with ``weights_only=True`` and no
pickled code runs. It is data from anywhere, so every field is checked before use and a
damaged or foreign file is one :class:`CheckpointError` naming it, never a ``KeyError``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from fcnbase import atomic_write
from tinyfcn.config import TrainConfig
from tinyfcn.model import VARIANTS, TinyFCN

CHECKPOINT_FORMAT = "tinyfcn-checkpoint-v1"


class CheckpointError(ValueError):
    """A file that is not a usable tinyfcn checkpoint; the message names the file."""


def save_checkpoint(
    path: str | os.PathLike,
    model: TinyFCN,
    config: TrainConfig,
    train_state: dict[str, object] | None = None,
) -> None:
    """Save ``{"format", "config", "model", "state_dict", "train_state"}`` atomically."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": asdict(config),
        "model": model.config(),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "train_state": train_state or {},
    }
    with atomic_write(path) as f:
        torch.save(payload, f)


def load_checkpoint(
    path: str | os.PathLike,
    *,
    map_location: torch.device | str = "cpu",
    expect: TrainConfig | None = None,
) -> tuple[TinyFCN, dict[str, object]]:
    """Rebuild the model a checkpoint holds; return it and the raw checkpoint.

    ``expect`` is the config the caller means to continue with: a checkpoint of another
    variant (or upsampling mode) is refused with a ``ValueError`` that says which.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        saved = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # unpickling errors come in many types; all mean "not ours"
        raise CheckpointError(
            f"{path} is not a readable tinyfcn checkpoint (weights_only torch.load refused it)"
        ) from None
    if not isinstance(saved, dict) or saved.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a tinyfcn checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    model = _checked_model(path, saved)
    if expect is not None:
        for key in ("variant", "learnable_upsampling"):
            if getattr(model, key) != getattr(expect, key):
                raise CheckpointError(
                    f"{path} holds a {key}={getattr(model, key)!r} model, but {key}="
                    f"{getattr(expect, key)!r} was asked for"
                )
    _check_train_state(path, saved["train_state"], model)
    return model.to(map_location), saved


def _checked_model(path: Path, saved: dict) -> TinyFCN:
    """The model a checkpoint describes, with its weights, or a :class:`CheckpointError`."""
    missing = [k for k in ("config", "model", "state_dict", "train_state") if k not in saved]
    if missing:
        raise CheckpointError(f"{path} lacks {', '.join(missing)} (a damaged checkpoint?)")
    for key in ("config", "model", "state_dict", "train_state"):
        if not isinstance(saved[key], dict):
            raise CheckpointError(f"{path}: {key} is a {type(saved[key]).__name__}, not a dict")
    variant, classes, learnable = (
        saved["model"].get(k) for k in ("variant", "num_classes", "learnable_upsampling")
    )
    if variant not in VARIANTS:
        raise CheckpointError(f"{path}: model variant {variant!r} is not one of {VARIANTS}")
    if not isinstance(classes, int) or isinstance(classes, bool) or not 1 <= classes <= 1000:
        raise CheckpointError(f"{path}: model num_classes {classes!r} is not a class count")
    if not isinstance(learnable, bool):
        raise CheckpointError(f"{path}: model learnable_upsampling {learnable!r} is not a bool")
    model = TinyFCN(variant, num_classes=classes, learnable_upsampling=learnable)
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as exc:  # torch names the first weight missing, extra or misshapen
        raise CheckpointError(f"{path}: {str(exc).splitlines()[1].strip()}") from None
    return model


def _check_train_state(path: Path, state: dict, model: TinyFCN) -> None:
    """Raise :class:`CheckpointError` unless ``state`` can resume ``model``'s training.

    ``{}`` (weights without a training state) is valid: training then starts afresh. The
    optimizer state must load into Adam over the model's trainable weights, with moments
    shaped like them: anything else would fail inside the first step.
    """
    step, elapsed = state.get("step", 0), state.get("elapsed", 0.0)
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise CheckpointError(f"{path}: train_state step {step!r} is not a step count")
    if not isinstance(elapsed, (int, float)) or not (math.isfinite(elapsed) and elapsed >= 0):
        raise CheckpointError(f"{path}: train_state elapsed {elapsed!r} is not a duration")
    history = state.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(h, dict) and "step" in h and "seconds" in h and "mean_iou" in h for h in history
    ):
        raise CheckpointError(f"{path}: train_state history is not a list of evaluations")
    if "optimizer" in state:  # Adam checks its own groups; the shapes of the moments are ours
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params)
        try:
            optimizer.load_state_dict(state["optimizer"])
            fits = all(
                value.shape == p.shape
                for p in params
                for value in optimizer.state[p].values()
                if isinstance(value, Tensor) and value.dim() > 0
            )
        except (ValueError, TypeError, KeyError, AttributeError, RuntimeError):
            fits = False
        if not fits:
            raise CheckpointError(
                f"{path}: its optimizer state does not fit the {len(params)} trainable "
                f"weights of a {model.variant} model"
            )
