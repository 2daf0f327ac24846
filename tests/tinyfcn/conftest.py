"""What tinyfcn's command tests share: a tiny run's options and an ``m2nist-gen`` folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.tinyfcn.test_data import m2nist_folder


@pytest.fixture(scope="module")
def m2nist_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as ``m2nist-gen`` writes it: 16 train and 4 test images, TINY's sizes."""
    return m2nist_folder(tmp_path_factory.mktemp("m2nist") / "out")


def mnist_args(mnist_source: str) -> list[str]:
    """The options that read MNIST from ``mnist_source`` (the ``mnist_source`` fixture)."""
    return ["--sample"] if mnist_source == "sample" else ["--mnist-dir", mnist_source]


#: A tiny run without the classifier: 16 images in batches of 8 is 2 steps an epoch.
TINY = [
    "--variant", "fcn2s", "--no-pretrained",
    "--epochs", "1", "--seconds", "0", "--batch-size", "8", "--eval-every", "0", "--no-progress",
]  # fmt: skip
#: TINY's images, generated in memory.
IMAGES = ["--train-images", "16", "--test-images", "4"]
