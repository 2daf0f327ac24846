"""The torch datasets over a directory and over an on-the-fly stream."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import m2nist
from m2nist.params import BLOCK

from .conftest import SMALL, generate_dir
from .test_mnist import _small_idx


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


def test_m2nist_refuses_a_flipped_byte(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL)
    blob = bytearray((out / "train.npz").read_bytes())
    blob[len(blob) // 2] ^= 0x01
    (out / "train.npz").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match=r"train\.npz: damaged \(Bad CRC-32"):
        m2nist.M2NIST(out, "train")
    assert len(m2nist.M2NIST(out, "test")) == 10


def test_a_directory_without_the_npz_format_is_refused_by_name(tmp_path):
    out = generate_dir(tmp_path / "o", *SMALL, "--format", "kaggle", "--seed", "5")
    with pytest.raises(FileNotFoundError, match=r"train\.npz not found: .*npz format"):
        m2nist.M2NIST(out, "train", generate=True)


def test_generate_true_honours_the_mnist_dir_variable(tmp_path, monkeypatch):
    folder = _small_idx(tmp_path / "idx")
    monkeypatch.setenv("M2NIST_MNIST_DIR", str(folder))
    monkeypatch.setenv("M2NIST_HOME", str(tmp_path / "no-cache"))
    ds = m2nist.M2NIST(tmp_path / "o", "train", generate=True, train=20, test=5)
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert len(ds) == 20 and meta["source"]["train"]["path"] == str(folder)
    assert not (tmp_path / "no-cache" / "MNIST").exists()  # nothing downloaded
