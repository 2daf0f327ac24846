"""What a request for M2NIST is: its parameters, checked once, and the constants they obey.

:class:`Params` is everything besides seed, split and source that determines the
output, validated when it is made, so the generator, the writer and the verifier never
see an impossible request. :func:`make_params` accepts the loose spellings of the
Python API and the command line (``digits=2``, ``"1-3"``, ``size="64x84"``) and
turns them into the same :class:`Params`, or the same :class:`ParamError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fcnbase.cli import UsageError

#: Labels are digit classes 0-9 and this background class, so there are NUM_CLASSES.
BACKGROUND = 10
NUM_CLASSES = 11
CLASS_NAMES = [*(str(d) for d in range(10)), "background"]
#: Images are made in blocks of BLOCK, each with its own random stream seeded by
#: (seed, SPLIT_IDS[split], block) (:mod:`m2nist.generator`); defined here for MAX_PIXELS.
BLOCK = 4096
SPLIT_IDS = {"train": 0, "test": 1}
#: Rows a block is painted in at a time: a speed setting, not part of the output. The
#: scatter makes a few temporaries per pixel; for 512 images they stay in the CPU's
#: cache, for a whole block they do not (composition ran 1.9x faster in CPU time so,
#: measured with ``benchmarks/bench_generate.py`` on a 2-core Xeon).
PAINT_ROWS = 512
MNIST_SIDE = 28
#: Largest canvas, in pixels. A block of :data:`BLOCK` images is the unit of work and of
#: randomness, so its size cannot shrink for big canvases without changing every output;
#: instead the canvas is bounded so that one block in flight stays below ~0.4 GB
#: (4096 images x 32768 pixels x 3 uint8 arrays), whatever ``--size`` asks for.
MAX_PIXELS = 1 << 15


class ParamError(UsageError):
    """Parameters that can never work (bad ranges, digits that cannot fit).

    A :class:`fcnbase.UsageError` (hence a ``ValueError``), so the Python API and the
    command line refuse the same request with the same exception and message.
    """


def as_pair(value: object, what: str, sep: str = "-") -> tuple[int, int]:
    """Read a ``(low, high)`` pair the way the command line spells it, or as Python does.

    Accepts ``(2, 3)``, ``[2, 3]``, ``"2-3"`` (``sep``), and for ``digits`` a single
    count ``2`` or ``"2"`` meaning ``2-2``. Anything else is a :class:`ParamError`
    naming ``what``, so ``generate(digits=2)`` and ``m2nist-gen --digits 2`` agree instead
    of one of them raising a bare ``TypeError``.
    """
    if isinstance(value, str):
        parts = re.split(rf"\s*{sep}\s*", value.strip())
        if len(parts) == 1 and sep == "-":
            parts *= 2
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ParamError(f"{what} must look like A{sep.strip('[]')[0]}B, got {value!r}")
        return int(parts[0]), int(parts[1])
    if isinstance(value, int) and not isinstance(value, bool) and sep == "-":
        return value, value
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ParamError(f"{what} must be a pair of integers, got {value!r}")


@dataclass(frozen=True)
class Params:
    """Everything besides seed, split and source that determines the output."""

    digits: tuple[int, int] = (1, 3)
    size: tuple[int, int] = (64, 84)
    margin: int = 2
    threshold: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.digits
        height, width = self.size
        if not 0 <= lo <= hi or hi < 1:
            raise ParamError(f"digits {lo}-{hi}: need 0 <= MIN <= MAX and MAX >= 1")
        if hi > 255:
            raise ParamError(f"digits {lo}-{hi}: at most 255 digits per image (uint8 ids)")
        if height < MNIST_SIDE or width < MNIST_SIDE:
            raise ParamError(f"size {height}x{width}: each side must be >= {MNIST_SIDE}")
        if height * width > MAX_PIXELS:
            raise ParamError(
                f"size {height}x{width}: canvas larger than {MAX_PIXELS} pixels (memory per "
                f"block of {BLOCK} images would exceed 0.4 GB)"
            )
        if not 0 <= self.margin <= max(height, width):
            raise ParamError(f"margin {self.margin}: must be in 0..{max(height, width)}")
        if not 0 <= self.threshold <= 254:
            raise ParamError(f"threshold {self.threshold}: must be in 0..254")

    @property
    def max_digits(self) -> int:
        return self.digits[1]


def make_params(
    digits: object = (1, 3), size: object = (64, 84), margin: object = 2, threshold: object = 0
) -> Params:
    """:class:`Params` from the loose spellings the API accepts (see :func:`as_pair`)."""
    for name, value in (("margin", margin), ("threshold", threshold)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool):
            raise ParamError(f"{name} must be an integer, got {value!r}")
    return Params(
        as_pair(digits, "digits"), as_pair(size, "size", "[xX]"), int(margin), int(threshold)
    )
