"""Parameters: the API's and the command line's spellings give the same Params or error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from m2nist.params import ParamError, Params, as_pair, make_params


def test_every_spelling_of_a_request_is_the_same_params():
    want = Params(digits=(2, 2), size=(64, 96), margin=3, threshold=0)
    for digits in (2, "2", "2-2", " 2 - 2 ", (2, 2), [2, 2]):
        for size in ("64x96", "64X96", (64, 96)):
            assert make_params(digits, size, 3, 0) == want
    assert as_pair("1-3", "digits") == (1, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", (64, 84), 2, 0), "digits must look like A-B, got 'x'"),
        ((2.5, (64, 84), 2, 0), "digits must be a pair of integers"),
        (((1, 3), 64, 2, 0), "size must be a pair of integers"),
        (((1, 3), "64-84", 2, 0), "size must look like AxB"),
        (((1, 3), (64, 84), "2", 0), "margin must be an integer"),
        (((1, 3), (64, 84), 2, True), "threshold must be an integer"),
        (((1, 300), (64, 84), 2, 0), "at most 255 digits"),
        (((1, 3), (256, 256), 2, 0), "canvas larger than 32768 pixels"),
    ],
)
def test_bad_spellings_and_values_are_param_errors_naming_the_field(args, message):
    with pytest.raises(ParamError, match=message):
        make_params(*args)


def test_the_label_convention_imports_without_the_generator():
    """``m2nist.params`` is cheap to import (the package root imports lazily), so other
    packages can take BACKGROUND and NUM_CLASSES from here without loading the generator."""
    code = (
        "import sys; from m2nist.params import BACKGROUND, NUM_CLASSES; import m2nist; "
        "assert (BACKGROUND, NUM_CLASSES) == (m2nist.BACKGROUND, m2nist.NUM_CLASSES) == (10, 11); "
        "print(sorted(m for m in sys.modules if m.startswith('m2nist')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['m2nist', 'm2nist.params']"
