"""PyTorch datasets: a generated directory (:class:`M2NIST`) or an endless stream.

Both yield ``(image, label_map)``: by default ``image`` is a float tensor (1,H,W)
in [0, 1] and ``label_map`` a LongTensor (H,W) with classes 0-9 and 10 =
background, which is what ``nn.CrossEntropyLoss`` expects. A ``transform``
receives that image tensor and a ``target_transform`` that label map.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from fcnbase.device import available_cores
from m2nist.generator import check_fits, compose, digit_pool
from m2nist.params import BLOCK, Params, make_params
from m2nist.save import METADATA, load_arrays, write_dataset

Transform = Callable[[torch.Tensor], object] | None


def to_tensors(images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images and labels as the tensors a net takes: the project's one convention.

    Images become float in [0, 1] with a channel axis in front of (H, W), so one image
    ``(H, W)`` gives ``(1, H, W)`` and a batch ``(N, H, W)`` gives ``(N, 1, H, W)``; labels
    (label maps or digit classes) become int64, as cross-entropy wants. Both are copies,
    so read-only arrays are safe to pass.
    """
    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255).unsqueeze(-3)
    return x, torch.from_numpy(np.array(labels, dtype=np.int64))


def _to_tensors(
    image: np.ndarray, labels: np.ndarray, transform: Transform, target_transform: Transform
) -> tuple[object, object]:
    x, y = to_tensors(image, labels)
    return (transform(x) if transform else x), (target_transform(y) if target_transform else y)


class M2NIST(Dataset):
    """A directory written by ``m2nist-gen`` (its ``SPLIT.npz``) as a map-style dataset.

    ``split`` is "train" or "test". The split is read into memory by
    :func:`m2nist.save.load_arrays` (16 KB per image; zipfile checks every CRC, so a
    damaged file is an error, not data); its arrays are ``images``, ``labels``,
    ``instances`` and ``boxes``. With ``generate=True`` a missing directory is generated
    first; ``generate_kwargs`` are ``train``/``test`` (image counts, default 5000/1000),
    ``seed``, ``digits``, ``size``, ``margin``, ``threshold``, ``source`` and ``workers``,
    the MNIST source found as everywhere else (``source``, else ``$M2NIST_MNIST_DIR``,
    else the download cache).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str = "train",
        transform: Transform = None,
        target_transform: Transform = None,
        generate: bool = False,
        **generate_kwargs,
    ) -> None:
        self.root, self.split = Path(root), split
        self.transform, self.target_transform = transform, target_transform
        if split not in ("train", "test"):
            raise ValueError(f"split {split!r}: must be 'train' or 'test'")
        npz = self.root / f"{split}.npz"
        if generate and not npz.is_file() and not (self.root / METADATA).exists():
            kw = dict(generate_kwargs)  # what is left after these: make_params's arguments
            write_dataset(
                self.root,
                counts={"train": kw.pop("train", 5000), "test": kw.pop("test", 1000)},
                seed=kw.pop("seed", 0),
                source=kw.pop("source", None),
                workers=kw.pop("workers", None) or available_cores(),
                formats=["npz"],
                params=make_params(**kw),
            )
        elif generate_kwargs and not generate:
            raise TypeError("generate_kwargs are only used with generate=True")
        if not npz.is_file():
            raise FileNotFoundError(
                f"{npz} not found: run m2nist-gen {root} (the npz format) or pass generate=True"
            )
        self.images, self.labels, self.instances, self.boxes = load_arrays(root, split).arrays()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[object, object]:
        return _to_tensors(
            self.images[index], self.labels[index], self.transform, self.target_transform
        )

    def __repr__(self) -> str:
        return f"M2NIST(root={str(self.root)!r}, split={self.split!r}, n={len(self)})"


class M2NISTStream(IterableDataset):
    """Fresh M2NIST images composed on the fly: an endless (or ``length``-long) stream.

    Block ``b`` of the stream is the same block that :func:`m2nist.generate` would
    produce with this seed (shifted by ``epoch`` via :meth:`set_epoch`), and DataLoader
    worker ``w`` of ``K`` takes blocks ``w, w+K, ...``: workers never repeat each other's
    images and the stream is reproducible for a fixed number of workers.
    """

    def __init__(
        self,
        split: str = "train",
        *,
        seed: int = 0,
        length: int | None = None,
        digits: tuple[int, int] | int | str = (1, 3),
        size: tuple[int, int] | str = (64, 84),
        margin: int = Params.margin,
        threshold: int = 0,
        source: str | os.PathLike | None = None,
        transform: Transform = None,
        target_transform: Transform = None,
    ) -> None:
        self.params = make_params(digits, size, margin, threshold)
        self.pool = digit_pool(split, self.params, source)
        check_fits(self.params, self.pool)
        self.split, self.seed, self.length, self.epoch = split, seed, length, 0
        self.transform, self.target_transform = transform, target_transform

    def set_epoch(self, epoch: int) -> None:
        """Move to a disjoint part of the stream (new images each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("an endless M2NISTStream has no length")
        return self.length

    def __iter__(self) -> Iterator[tuple[object, object]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        offset = self.epoch << 40
        for block in itertools.count(worker, workers):
            start = block * BLOCK
            stop = start + BLOCK if self.length is None else min(start + BLOCK, self.length)
            if stop <= start:
                return
            arrays = compose(
                self.pool, self.params, self.seed, self.split, offset + start, offset + stop
            )
            for image, labels in zip(arrays.images, arrays.labels, strict=True):
                yield _to_tensors(image, labels, self.transform, self.target_transform)
