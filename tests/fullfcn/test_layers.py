"""The layers: fullfcn builds on tinyfcn's machinery and fcnbase, never on the M2NIST data."""

from __future__ import annotations

import subprocess
import sys


def test_importing_fullfcn_loads_neither_the_generator_nor_tinyfcn_training() -> None:
    # m2nist.params (the label constants tinyfcn.model shares with the data) is allowed: it
    # is a page of constants. Composition, MNIST decoding and the training API are not.
    code = (
        "import sys, fullfcn, fullfcn.train, fullfcn.evaluate, fullfcn.predict\n"
        "print(sorted(m for m in sys.modules if m.startswith(('m2nist', 'tinyfcn.train'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['m2nist', 'm2nist.params']"


def test_tinyfcn_training_api_is_still_one_attribute_away() -> None:
    import tinyfcn

    assert tinyfcn.run.__module__ == "tinyfcn.train"
    assert "run" in tinyfcn.__all__
