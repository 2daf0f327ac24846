"""M2NIST: MNIST digits composed without overlap on a canvas, with per-pixel labels.

A correct, fast and reproducible generator (``m2nist-gen``) plus the Python API:

* :func:`generate` -- arrays in memory; :func:`load_mnist` -- the verified source digits;
* :class:`M2NIST` -- a torchvision-style Dataset over a generated directory;
* :class:`M2NISTStream` -- an IterableDataset composing fresh images on the fly.

Labels use classes 0-9 for digits and :data:`BACKGROUND` = 10, so there are
:data:`NUM_CLASSES` = 11 classes.
"""

from m2nist.compose import M2nistArrays, generate
from m2nist.metadata import package_version
from m2nist.mnist import MnistSourceError, load_mnist
from m2nist.npz import load_arrays
from m2nist.params import BACKGROUND, NUM_CLASSES, ParamError
from m2nist.verification import verify

__version__ = package_version()


def __getattr__(name: str):
    """Import the torch datasets on first use, so that ``m2nist-gen`` starts fast."""
    if name in ("M2NIST", "M2NISTStream"):
        from m2nist import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'm2nist' has no attribute {name!r}")


__all__ = [
    "BACKGROUND",
    "M2NIST",
    "NUM_CLASSES",
    "M2NISTStream",
    "M2nistArrays",
    "MnistSourceError",
    "ParamError",
    "__version__",
    "generate",
    "load_arrays",
    "load_mnist",
    "verify",
]
