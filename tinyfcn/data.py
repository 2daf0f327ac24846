"""The data the training API feeds its nets: M2NIST splits and MNIST digits, as tensors.

A split is whatever ``m2nist`` hands out -- :class:`m2nist.M2NISTArrays` (from
:func:`m2nist.generate` or :func:`m2nist.load_arrays`) or the :class:`m2nist.M2NIST` Dataset
over a folder ``m2nist-gen`` wrote -- or a plain ``(images, labels)`` pair of numpy arrays or
tensors. :func:`as_tensors` turns each into what a net takes, once per run.

This is the one module of the training API that needs the ``m2nist`` generator, which is
why ``tinyfcn``'s package root imports it only on first use: ``fullfcn`` builds on tinyfcn's
machinery without ever loading M2NIST.
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

import m2nist

#: M2NIST's labels: classes 0-9 are digits, BACKGROUND (10) the rest; 11 classes in all.
BACKGROUND, NUM_CLASSES, CLASS_NAMES = m2nist.BACKGROUND, m2nist.NUM_CLASSES, m2nist.CLASS_NAMES

#: A split as the training API takes it.
Split = m2nist.M2NISTArrays | m2nist.M2NIST | tuple[np.ndarray, np.ndarray] | tuple[Tensor, Tensor]


def as_tensors(data: Split) -> tuple[Tensor, Tensor]:
    """A split as a net takes it: float images (N, 1, H, W) in [0, 1], int64 labels (N, H, W).

    ``M2NISTArrays`` and the ``M2NIST`` Dataset both hold their split's uint8 ``images`` and
    ``labels`` (the Dataset's transforms are for a DataLoader and are not applied); a pair
    may be numpy arrays or tensors. uint8 images are scaled to [0, 1] as
    :func:`m2nist.to_tensors` does, (N, H, W) images get their channel axis, one-hot labels
    (N, H, W, 11), Kaggle's ``segmented.npy``, become class indices.

    This is where ``fit``, ``run`` and ``evaluate`` check their data, once, before any
    training: anything else is refused in one line that says what was expected.
    """
    pair = (data.images, data.labels) if hasattr(data, "images") else data
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise ValueError(
            f"expected a split (M2NISTArrays, M2NIST or an (images, labels) pair), got "
            f"{type(data).__name__}"
        )
    images, labels = (a if isinstance(a, Tensor) else torch.from_numpy(np.array(a)) for a in pair)
    images = images.float().div_(255) if images.dtype == torch.uint8 else images
    images = images.unsqueeze(1) if images.dim() == 3 else images
    if labels.dim() == 4 and labels.shape[-1] == NUM_CLASSES:
        labels = labels.argmax(-1)
    problem = _problem(images, labels)
    if problem:
        raise ValueError(problem)
    return images.float(), labels.long()


def _problem(images: Tensor, labels: Tensor) -> str | None:
    """What is wrong with a split (None: nothing), as the one line a student reads."""
    if images.dim() != 4 or images.shape[1] != 1 or not len(images):
        return f"expected images of shape (N, 1, H, W) or (N, H, W), got {tuple(images.shape)}"
    shape, want = tuple(labels.shape), (len(images), *images.shape[2:])
    if not images.is_floating_point():
        return f"expected uint8 (0-255) or float (0-1) images, got {images.dtype}"
    if labels.is_floating_point() or labels.dtype == torch.bool:
        return f"expected integer labels (class indices), got {labels.dtype}"
    if shape != want:
        return f"expected labels of shape {want} (a class per pixel), got {shape}"
    if images.min() < 0 or images.max() > 1:
        return f"expected images in [0, 1], got {float(images.min()):g} to {float(images.max()):g}"
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        return (
            f"expected labels 0-{NUM_CLASSES - 1} ({BACKGROUND} = background), got "
            f"{int(labels.min())} to {int(labels.max())}"
        )
    return None


def load_m2nist(
    n_train: int = 5000,
    n_test: int = 1000,
    seed: int = 0,
    source: str | os.PathLike | None = None,
) -> tuple[m2nist.M2NISTArrays, m2nist.M2NISTArrays]:
    """Train and test splits of M2NIST: ``n_train`` images composed from MNIST train digits
    and ``n_test`` from MNIST test digits, so no test digit was ever seen in training.

    ``source`` is where MNIST comes from (None: ``$M2NIST_MNIST_DIR`` or a download,
    ``"sample"``: the bundled sample, or a folder).
    """
    train = m2nist.generate(n_train, split="train", seed=seed, source=source)
    return train, m2nist.generate(n_test, split="test", seed=seed, source=source)


def load_digits(train: bool, source: str | os.PathLike | None) -> tuple[Tensor, Tensor]:
    """MNIST digits as float (N, 1, 28, 28) in [0, 1] and int64 labels."""
    return m2nist.to_tensors(*m2nist.load_mnist(train, source=source))


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
