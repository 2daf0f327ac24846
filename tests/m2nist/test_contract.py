"""The M2NIST contract's checkers: each catches the breakage it names."""

from __future__ import annotations

import numpy as np
import pytest

import m2nist
from m2nist.params import Params

from .contract import invariant_errors


@pytest.fixture(scope="module")
def real(mnist_source) -> m2nist.M2NISTArrays:
    """50 images of real MNIST (the first rows of ``test_compose``'s 3000: prefix-stable)."""
    return m2nist.generate(50, split="train", seed=7, source=mnist_source)


def test_checker_catches_broken_arrays(real):
    a = m2nist.M2NISTArrays(*(x.copy() for x in real.arrays()))
    i, y, x = np.argwhere(a.labels != m2nist.BACKGROUND)[0]
    a.labels[i, y, x] = (a.labels[i, y, x] + 1) % 10
    assert any("another class" in e for e in invariant_errors(a, Params()))
    b = m2nist.M2NISTArrays(*(x.copy() for x in real.arrays()))
    b.boxes[0, 0, 3] += 1
    assert any("not its ink bounding box" in e for e in invariant_errors(b, Params()))
    c = m2nist.M2NISTArrays(*(x.copy() for x in real.arrays()))
    c.images[0, 0, 0] = 255  # ink with no label
    assert any("ink and labels" in e for e in invariant_errors(c, Params()))
