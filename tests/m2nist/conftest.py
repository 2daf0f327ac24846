"""Fixtures of the m2nist tests: small generated directories, built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from m2nist.cli import main

#: Arguments of a small run from the bundled sample (40 train + 10 test images).
SMALL = ["--sample", "--train", "40", "--test", "10"]


def generate_dir(out: Path, *args: str) -> Path:
    """Run ``m2nist-gen OUT ARGS --quiet`` in-process and insist on success."""
    assert main([str(out), *args, "--quiet"]) == 0
    return out


@pytest.fixture(scope="session")
def sample_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both formats from the bundled sample: 600 train + 200 test images."""
    out = tmp_path_factory.mktemp("m2nist") / "sample"
    return generate_dir(out, "--sample", "--train", "600", "--test", "200", "--format", "both")
