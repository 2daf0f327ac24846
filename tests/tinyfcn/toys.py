"""A toy split and a toy config: enough to exercise the training API in a second, no MNIST."""

from __future__ import annotations

import torch
from torch import Tensor

from tinyfcn import TrainConfig


def toy_data(n: int = 8, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(images, labels)`` tensors: random images whose bright pixels are class 3, the rest
    background."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, 32, 36, generator=g)
    return images, torch.where(images[:, 0] > 0.7, 3, 10)


def toy_splits() -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Eight training images and four test images."""
    return toy_data(), toy_data(4, seed=1)


def toy_config(**overrides: object) -> TrainConfig:
    """fcn2s from scratch, 2 epochs in batches of 4 on one thread, no history points:
    deterministic (the same seed on another thread count may differ in the last bits)."""
    base: dict[str, object] = {
        "variant": "fcn2s",
        "pretrained": False,
        "epochs": 2,
        "seconds": None,
        "batch_size": 4,
        "eval_every": 0,
        "threads": 1,
    }
    return TrainConfig(**{**base, **overrides})
