"""The data the training API feeds its nets: M2NIST splits and MNIST digits, as tensors.

This is the one module of the training API's inputs that needs the ``m2nist`` generator,
which is why ``tinyfcn``'s package root imports it only on first use: ``fullfcn`` builds
on tinyfcn's machinery without ever loading M2NIST.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from m2nist.dataset import to_tensors
from m2nist.params import CLASS_NAMES

__all__ = ["CLASS_NAMES", "M2NISTData", "load_digits", "load_m2nist", "random_shift"]


@dataclass
class M2NISTData:
    """One split as tensors: images float (N, 1, H, W) in [0, 1], labels int64 (N, H, W)."""

    images: Tensor
    labels: Tensor

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or self.labels.dim() != 3:
            raise ValueError(
                f"expected images (N, 1, H, W) and labels (N, H, W), got "
                f"{tuple(self.images.shape)} and {tuple(self.labels.shape)}"
            )
        if self.images.shape[0] != self.labels.shape[0] or (
            self.images.shape[-2:] != self.labels.shape[-2:]
        ):
            raise ValueError(
                f"images {tuple(self.images.shape)} and labels {tuple(self.labels.shape)} "
                "do not match"
            )

    def __len__(self) -> int:
        return self.images.shape[0]

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: np.ndarray) -> M2NISTData:
        """From M2NIST's uint8 arrays (labels 0-9 digits, 10 background)."""
        return cls(*to_tensors(images, labels))


def load_m2nist(
    n_train: int = 5000,
    n_test: int = 1000,
    seed: int = 0,
    source: str | None = None,
) -> tuple[M2NISTData, M2NISTData]:
    """Train and test splits of M2NIST: ``n_train`` images composed from MNIST train digits
    and ``n_test`` from MNIST test digits, so no test digit was ever seen in training.

    ``source`` is where MNIST comes from (None: ``$M2NIST_MNIST_DIR`` or a download,
    ``"sample"``: the bundled sample, or a folder).
    """
    import m2nist

    train = m2nist.generate(n_train, split="train", seed=seed, source=source)
    test = m2nist.generate(n_test, split="test", seed=seed, source=source)
    return (
        M2NISTData.from_arrays(train.images, train.labels),
        M2NISTData.from_arrays(test.images, test.labels),
    )


def load_digits(train: bool, source: str | None) -> tuple[Tensor, Tensor]:
    """MNIST digits as float (N, 1, 28, 28) in [0, 1] and int64 labels."""
    import m2nist

    return to_tensors(*m2nist.load_mnist(train, source=source))


def random_shift(images: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image by its own random offset in ``[-max_shift, max_shift]``, filling
    with zeros (background).

    MNIST digits are centred, so a classifier trained on them only recognises a digit
    seen through a window centred on it. Segmentation asks every pixel of a digit for its
    class, i.e. the converted net's 28x28 windows see digits up to ~10 pixels off centre;
    shifting while training the classifier prepares it for that.
    """
    if max_shift <= 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (max_shift,) * 4)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]
    cols = (dx + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)
