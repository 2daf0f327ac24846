"""M2NIST: MNIST digits composed without overlap on a canvas, with per-pixel labels.

Start reading at ``m2nist/generator.py``: how one image is made (layout, then rendering),
in about 300 lines. Then, as needed: ``mnist.py`` (the source digits, checked),
``save.py`` (``m2nist-gen``'s files: npz, Kaggle, PNG, written safely), ``verifier.py``
(``--verify``: every file checked, rows regenerated), ``dataset.py`` (torch), ``viz.py``
(pictures), ``legacy.py`` (the 2018 generator replayed), ``cli.py`` and ``params.py``.

* :func:`generate` -- arrays in memory; :func:`load_mnist` -- the verified source digits;
* :func:`load_arrays` -- a split ``m2nist-gen`` wrote; :func:`to_tensors` -- for a net;
* :class:`M2NIST` -- a torchvision-style Dataset over a generated directory;
* :class:`M2NISTStream` -- an IterableDataset composing fresh images on the fly.

Labels use classes 0-9 for digits and :data:`BACKGROUND` = 10, so there are
:data:`NUM_CLASSES` = 11 classes.
"""

import importlib

from fcnbase import __version__

#: Where each public name lives. Nothing is imported until a name is first used, so
#: ``from m2nist.params import BACKGROUND`` (the label convention) costs no generator,
#: and ``m2nist-gen`` loads no torch.
_HOMES = {
    "BACKGROUND": "m2nist.params",
    "NUM_CLASSES": "m2nist.params",
    "CLASS_NAMES": "m2nist.params",
    "ParamError": "m2nist.params",
    "M2NISTArrays": "m2nist.generator",
    "generate": "m2nist.generator",
    "load_arrays": "m2nist.save",
    "MnistSourceError": "m2nist.mnist",
    "load_mnist": "m2nist.mnist",
    "verify": "m2nist.verifier",
    "M2NIST": "m2nist.dataset",
    "M2NISTStream": "m2nist.dataset",
    "to_tensors": "m2nist.dataset",
}


def __getattr__(name: str) -> object:
    """Import a public name's module on first use (see :data:`_HOMES`)."""
    if name in _HOMES:
        value = globals()[name] = getattr(importlib.import_module(_HOMES[name]), name)
        return value
    raise AttributeError(f"module 'm2nist' has no attribute {name!r}")


__all__ = [*sorted(_HOMES), "__version__"]
