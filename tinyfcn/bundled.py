"""The tiny FCNs bundled trained: ``pretrained("fcn1s")`` segments M2NIST at once, offline.

``tinyfcn/weights/<variant>.pt`` holds each variant's state dict (float16, to halve the
package's bytes; loaded back as float32), made by ``scripts/make_pretrained.py`` from the
default recipe on real MNIST with a budget of epochs and one thread, so the same seed gives
the same weights. ``provenance.json`` beside them records per variant how it was made and
what it scores on 1,000 test images composed from MNIST test digits (:func:`provenance`).

A notebook shows real segmentations from these before training its own nets, and a
homework can fine-tune one with :func:`tinyfcn.fit`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import torch

from tinyfcn.model import TinyFCN


def weights_dir() -> Path:
    """The folder of the bundled weights, inside the installed package."""
    return Path(str(resources.files("tinyfcn").joinpath("weights")))


def provenance() -> dict[str, dict]:
    """How each bundled net was made and what it scored, by variant (``provenance.json``)."""
    return json.loads((weights_dir() / "provenance.json").read_text())


def pretrained(variant: str = "fcn1s") -> TinyFCN:
    """The bundled trained ``variant`` as a :class:`TinyFCN` on the CPU, in eval mode.

    Its weights are opened with ``torch.load(weights_only=True)`` (no pickled code runs);
    ``model.train()`` and :func:`tinyfcn.fit` fine-tune it like any net.
    """
    model = TinyFCN(variant, learnable_upsampling=True)  # an unknown variant: ValueError
    path = weights_dir() / f"{variant}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no bundled weights (scripts/make_pretrained.py makes them)"
        )
    weights = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict({name: value.float() for name, value in weights.items()})
    return model.eval()
