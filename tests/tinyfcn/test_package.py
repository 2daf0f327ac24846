"""The package root: every public name importable, the training API loaded only when asked."""

from __future__ import annotations

import importlib
import subprocess
import sys

import tinyfcn

TRAINING_MODULES = ("config", "data", "loop", "evaluation", "checkpoint", "plot", "train")


def test_every_public_name_resolves() -> None:
    for name in tinyfcn.__all__:
        assert getattr(tinyfcn, name) is not None, name


def test_each_lazy_name_is_its_module_s_object() -> None:
    for name, module in tinyfcn._TRAIN_API.items():
        assert getattr(tinyfcn, name) is getattr(importlib.import_module(module), name), name


def test_importing_tinyfcn_loads_neither_the_generator_nor_the_training_modules() -> None:
    # The model takes its class count from the classifier, so not even m2nist's labels load.
    prefixes = ("m2nist", *(f"tinyfcn.{m}" for m in TRAINING_MODULES))
    code = f"import sys, tinyfcn; print(*(m for m in sys.modules if m.startswith({prefixes})))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert not out.split(), out
