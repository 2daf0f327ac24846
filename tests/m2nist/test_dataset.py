"""The torch datasets over a directory and over an on-the-fly stream."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import m2nist
from m2nist.compose import BLOCK


def test_map_dataset_defaults(sample_out):
    ds = m2nist.M2NIST(sample_out, split="test")
    assert len(ds) == 200
    image, target = ds[3]
    assert image.dtype == torch.float32 and image.shape == (1, 64, 84)
    assert image.min() >= 0 and image.max() <= 1
    assert target.dtype == torch.int64 and target.shape == (64, 84)
    assert set(target.unique().tolist()) <= set(range(11)) and m2nist.BACKGROUND in target
    assert torch.equal((image[0] > 0), target != m2nist.BACKGROUND)


def test_map_dataset_transforms_and_loader(sample_out):
    ds = m2nist.M2NIST(sample_out, transform=lambda x: x * 2, target_transform=lambda y: y + 1)
    image, target = ds[0]
    plain_image, plain_target = m2nist.M2NIST(sample_out)[0]
    assert torch.equal(image, plain_image * 2) and torch.equal(target, plain_target + 1)
    images, targets = next(iter(DataLoader(ds, batch_size=8)))
    assert images.shape == (8, 1, 64, 84) and targets.shape == (8, 64, 84)


def test_map_dataset_can_generate(tmp_path):
    ds = m2nist.M2NIST(
        tmp_path / "gen", split="test", generate=True, train=20, test=30, source="sample", seed=2
    )
    assert len(ds) == 30 and m2nist.verify(tmp_path / "gen") == []
    assert np.array_equal(
        ds.labels, m2nist.generate(30, split="test", seed=2, source="sample").labels
    )
    with pytest.raises(FileNotFoundError, match="generate=True"):
        m2nist.M2NIST(tmp_path / "nothing")


def test_stream_matches_generate_and_splits_blocks_across_workers():
    stream = m2nist.M2NISTStream(split="train", seed=9, length=BLOCK + 6, source="sample")
    labels = torch.stack([t for _, t in DataLoader(stream, batch_size=None, num_workers=2)])
    expected = m2nist.generate(BLOCK + 6, seed=9, source="sample").labels
    # worker 0 composes block 0, worker 1 block 1: together exactly generate()'s images
    got = labels.numpy().astype(np.uint8)
    assert len(got) == BLOCK + 6
    assert sorted(map(bytes, got)) == sorted(map(bytes, expected))


def test_stream_epochs_are_fresh():
    stream = m2nist.M2NISTStream(seed=1, length=5, source="sample")
    first = torch.stack([x for x, _ in stream])
    stream.set_epoch(1)
    second = torch.stack([x for x, _ in stream])
    assert not torch.equal(first, second)
    assert len(stream) == 5
