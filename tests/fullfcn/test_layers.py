"""The layers: fullfcn builds on tinyfcn's machinery and fcnbase, never on the M2NIST data."""

from __future__ import annotations

import subprocess
import sys


def test_importing_fullfcn_loads_neither_the_generator_nor_tinyfcn_training() -> None:
    # The nets take their class count from the caller: no dataset package is loaded.
    code = (
        "import sys, fullfcn, fullfcn.train, fullfcn.evaluate, fullfcn.predict\n"
        "print(sorted(m for m in sys.modules if m.startswith(('m2nist', 'tinyfcn.train'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_tinyfcn_training_api_is_still_one_attribute_away() -> None:
    import tinyfcn

    assert tinyfcn.run.__module__ == "tinyfcn.train"
    assert "run" in tinyfcn.__all__
