"""The notebooks' exercise checks: each tests what a right answer *does*, never stores one.

A check cell of ``notebooks/NN_*.ipynb`` is one call, ``exercises.NAME(answer, ...)``,
passing what the notebook built (its data, its net class). The check prints "not answered
yet" while ``answer`` is None and "correct" when the answer holds; a wrong answer raises
:class:`Wrong` with a hint that says what is wrong and how to think about it, never the
expected value. So the checks test a property a right answer has (a probability over a
known set of equally likely draws, a crop that lines two maps up), run the student's own
function on cases, or run the student's net -- and the reference answers appear nowhere
in the student's notebook or in this module's messages.

One file holds the checks of all five notebooks (a section each), so they share one
convention and a few helpers; that makes it longer than a teaching file.

Graders: under ``NBGRADER_EXECUTION`` (set by nbgrader's autograde, and by
``scripts/grade_notebooks.py``) an unanswered exercise raises :class:`NotAnswered`, so it
earns no points; in a student's Jupyter it only prints.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tinyfcn.classifier import INPUT_SIZE, MnistClassifier
from tinyfcn.convert import convolutionalize
from tinyfcn.data import BACKGROUND, CLASS_NAMES, NUM_CLASSES, as_tensors
from tinyfcn.evaluation import evaluate
from tinyfcn.fcn import crop_plan
from tinyfcn.geometry import coord_map, output_size, receptive_fields
from tinyfcn.metrics import ConfusionMatrix
from tinyfcn.model import TinyFCN

NOT_ANSWERED, CORRECT = "not answered yet", "correct"


class Wrong(AssertionError):
    """A wrong answer. The message is a hint: what is wrong, never the expected value."""


class NotAnswered(AssertionError):
    """Raised instead of printing "not answered yet" when a grader runs the notebook."""


def exercise(check: Callable[..., None]) -> Callable[..., None]:
    """Wrap a check with the notebooks' convention: None is "not answered yet", a check
    that returns is "correct", a check that fails raises :class:`Wrong` (its hint)."""

    @functools.wraps(check)
    def run(answer: Any, *context: Any) -> None:
        if answer is None:
            if os.environ.get("NBGRADER_EXECUTION"):
                raise NotAnswered(f"{check.__name__}: {NOT_ANSWERED}")
            print(NOT_ANSWERED)
            return
        check(answer, *context)
        print(CORRECT)

    return run


def _require(condition: object, hint: str) -> None:
    if not condition:
        raise Wrong(hint)


def _number(answer: Any, what: str) -> float:
    _require(isinstance(answer, int | float | np.number) or torch.is_tensor(answer), what)
    return float(answer)


def _whole(value: Any, hint: str) -> int:
    """``value`` as an int when it is a whole number of any type (3, numpy's 3, 3.0, 6/2)."""
    whole = isinstance(value, numbers.Real) and not isinstance(value, bool)
    _require(whole and math.isfinite(value) and value == int(value), hint)
    return int(value)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)  # float32 sums pass


# --- 01: M2NIST and the 2018 generator ------------------------------------------------------


@exercise
def third_digit_chance(answer: Any, sources18: np.ndarray) -> None:
    """The chance that the 2018 code pastes a drawn third digit: x = randint(56, 66) has ten
    equally likely values, so the chance is a count over ten, and half of it must be the
    replay's share of 3-digit images (3 digits are drawn in half the images)."""
    p = _number(answer, "answer is a probability: one number between 0 and 1")
    _require(0 <= p <= 1, f"{p} is not a probability: it lies between 0 and 1")
    share = float(np.mean((sources18[:, :, 0] >= 0).sum(1) == 3))
    _require(
        _close(p * 10, round(p * 10)) and abs(share - p / 2) < 0.02,
        f"{p:.4g} is not the chance that x + 28 <= 84: numpy's randint(56, 66) excludes 66, so "
        "x takes ten equally likely values; the chance is how many of them fit, over ten "
        "(half of it should be the replay's share of 3-digit images, printed above)",
    )


@exercise
def background_share(answer: Any, train: Any) -> None:
    """The share of background pixels: every pixel without ink, as a fraction."""
    share = _number(answer, "answer is a fraction: one number between 0 and 1")
    _require(0 <= share <= 1, f"{share} is not a fraction of the pixels: divide by their number")
    ink = float((train.images > 0).mean())
    _require(
        _close(share + ink, 1),
        "that is not the share of background in train.labels: background is class "
        "m2nist.BACKGROUND (10, not 0: class 0 is the digit zero), every pixel without ink",
    )


@exercise
def one_hot(answer: Any, labels: np.ndarray) -> None:
    """Kaggle-style masks of ``labels``: uint8, one channel per class, one 1 per pixel."""
    _require(isinstance(answer, np.ndarray), "answer is a NumPy array, as np.load gives")
    _require(
        answer.shape == (*labels.shape, NUM_CLASSES),
        f"shape {answer.shape}: one channel per class on the last axis (the labels' shape "
        "plus the ten digits and the background, channel 10)",
    )
    _require(answer.dtype == np.uint8, f"dtype {answer.dtype}: the Kaggle files hold uint8")
    _require(
        (answer.sum(-1, dtype=np.int64) == 1).all() and answer.max() == 1,
        "some pixels do not hold exactly one 1: a one-hot pixel sets one channel, its class's",
    )
    _require(
        (answer.argmax(-1) == labels).all(),
        "some pixels set the wrong channel: channel c is 1 exactly where the label is c",
    )


@exercise
def split_leak(answer: Any) -> None:
    """``leak(sources, train_fraction)``: the share of test rows (after the cut) that hold a
    source digit also placed in a training row; empty slots (-1) are no digit."""
    _require(callable(answer), "answer is a function leak(sources, train_fraction)")

    def rows(*digits: tuple[int, ...]) -> np.ndarray:
        table = np.full((len(digits), 3, 4), -1)
        for row, ids in zip(table, digits, strict=True):
            row[: len(ids), 0] = ids
        return table

    train = [(0, 1), (2,), (3, 4), (5,), (6, 7), (8,), (9,)]
    cases = {
        "test rows whose digits no training row holds": (rows(*train, (10,), (11, 12), (13,)), 0),
        "one test row of three holding a training digit": (rows(*train, (10,), (11, 4), (13,)), 1),
        "rows that share only empty slots (-1)": (rows(*train, (10, 11), (12,), (13,)), 0),
    }
    for case, (sources, shared_rows) in cases.items():
        got = float(answer(sources, 0.7))
        _require(
            _close(got, shared_rows / 3),
            f"on {case}, your leak is {got:.4g}: count the test rows (the last 30 %) holding "
            "at least one source digit (>= 0) that a training row also holds, over the test rows",
        )


@exercise
def box_gap(answer: Any, boxes: np.ndarray, margin: int) -> None:
    """``gap(p, q)`` of two ink boxes ``(y0, x0, y1, x1)`` (end exclusive): the larger of
    the free rows and the free columns between them; at least ``margin`` on ``boxes``."""
    _require(callable(answer), "answer is a function gap(p, q) of two boxes (y0, x0, y1, x1)")
    cases = [  # p, q and their gap
        ((0, 0, 10, 10), (0, 14, 10, 20), 4),  # side by side
        ((0, 14, 10, 20), (0, 0, 10, 10), 4),  # the same, the other way round
        ((0, 0, 5, 10), (7, 3, 10, 9), 2),  # one above the other
        ((0, 0, 10, 10), (12, 15, 20, 20), 5),  # apart on the diagonal
    ]
    for p, q, gap in cases:
        got = answer(np.array(p), np.array(q))
        _require(
            got == gap,
            f"for the boxes p={p} and q={q} your gap is {got}: x1 and y1 are exclusive, so the "
            "free columns between two boxes are the right box's x0 minus the left box's x1 "
            "(rows alike); take the larger of the row gap and the column gap",
        )
    gaps = [answer(p, q) for p, q in boxes[:, :2, 1:].astype(int)]
    _require(
        min(gaps) >= margin,
        f"your gaps on images made with margin={margin} go below it: the generator guarantees it",
    )


# --- 02: from a classifier to an FCN -----------------------------------------------------------

#: Image sizes the size checks try: the least, odd, M2NIST's, tall and wide.
SIZES = [(28, 28), (31, 29), (64, 84), (100, 37), (57, 90)]


def _size_function(answer: Any, net: nn.Module, what: str, hint: str) -> None:
    _require(callable(answer), f"answer is a function (h, w) -> (rows, cols) giving {what}")
    for size in SIZES:
        with torch.no_grad():
            truth = tuple(net(torch.zeros(1, 1, *size)).shape[-2:])
        got = tuple(answer(*size))
        _require(got == truth, f"for a {size[0]}x{size[1]} image your function gives {got}: {hint}")


@exercise
def heatmap_size(answer: Any) -> None:
    """The converted classifier's heatmap size: one cell per 28x28 window, 4 pixels apart."""
    net = convolutionalize(MnistClassifier(), INPUT_SIZE).eval()
    _size_function(
        answer,
        net,
        "the heatmap's size",
        "not the converted net's heatmap. Count the windows per side: a window's top-left "
        "pixel is a multiple of 4, and the whole 28x28 window must fit in the image",
    )


@exercise
def cut_receptive_field(answer: Any) -> None:
    """How many pixels one cell of the cut net (dense32 as a 3x3 convolution) sees, along one
    side."""
    answer = _whole(answer, "answer is a whole number: pixels along one side")
    features = convolutionalize(MnistClassifier(), INPUT_SIZE).features
    cut = [*features, nn.Conv2d(8, 32, 3), nn.ReLU(), nn.Conv2d(32, 10, 1)]
    field = int(receptive_fields(cut)[-1].receptive_field)
    _require(answer != 28, "28 is what the 5x5 kernel sees; a 3x3 kernel reaches less far")
    _require(
        answer == field,
        f"one cell of the cut net does not see {answer} pixels: start from pool2's row of the "
        "table (field and jump); a k x k kernel adds (k - 1) jumps to the field",
    )


@exercise
def crops(answer: Any, net: nn.Module) -> None:
    """A net's crops: each must put the cropped map's pixel 0 on the pixel 0 of the map it
    joins (or of the image), which is what a coordinate map says; checked for ``answer``."""
    paths = net.crop_paths()
    _require(
        isinstance(answer, dict) and set(answer) == set(paths),
        f"answer is a dict with one crop per name: {sorted(paths)}",
    )
    for name, (src, ref) in paths.items():
        hint = f"crop {name}={answer[name]!r}: a crop is a whole, non-negative number of pixels"
        c = _whole(answer[name], hint)
        _require(c >= 0, hint)
        source, target = coord_map(src), coord_map(ref)
        where = source.offset + source.stride * c  # pixel 0 of the cropped map, in the image
        joins = "the map it is added to" if ref else "the image"
        side = "left" if where < target.offset else "right"
        _require(
            where == target.offset,
            f"cropping {name} by {c} leaves its pixel 0 {side} of the pixel 0 of {joins}: put "
            f"both maps' pixel 0 in image coordinates, then divide their distance by {name}'s "
            "stride",
        )


def _segments_every_size(net: TinyFCN, padding: int) -> str | None:
    """Why ``net``, its conv1 padded by ``padding``, cannot segment some image (None: it can
    segment them all: sizes repeat modulo the stride 4, so 28 to 35 stand for every size)."""
    net.conv1[0].padding = (padding, padding)
    try:
        net.crop_offsets = crop_plan(net.crop_paths())
    except ValueError:
        return f"with padding {padding} the final map starts inside the image: a negative crop"
    for side in range(28, 36):
        try:
            with torch.no_grad():
                net(torch.zeros(1, 1, side, side))
        except ValueError:
            return (
                f"with padding {padding} a {side}x{side} image is cut short: the final map holds "
                "less than the crop plus the image (the floor loses up to 3 pixels)"
            )
    return None


@exercise
def least_padding(answer: Any) -> None:
    """fcn4s's least conv1 padding: padded so, the net segments every size; one less fails."""
    answer = _whole(answer, "answer is a whole number of pixels")
    _require(answer >= 0, "a padding is not negative")
    net = TinyFCN("fcn4s")
    failure = _segments_every_size(net, answer)
    _require(failure is None, failure)
    _require(
        answer == 0 or _segments_every_size(net, answer - 1) is not None,
        f"padding {answer} works, but so does a smaller one: the least is asked",
    )


# --- 03: training the tiny FCNs ----------------------------------------------------------------


def _matrix(n: np.ndarray) -> ConfusionMatrix:
    """The metrics' own class holding the counts ``n``: the formulas the checks hold to."""
    matrix = ConfusionMatrix(len(n))
    matrix.matrix = torch.as_tensor(n, dtype=torch.int64)
    return matrix


@exercise
def all_background(answer: Any, test_labels: torch.Tensor) -> None:
    """``floor(t)`` -> (pixel accuracy, mean IU) of predicting background (the last class)
    everywhere, from the pixel counts ``t`` alone; run on the test split and two made-up
    counts, one with absent digits."""
    _require(callable(answer), "answer is a function of the pixel counts t: (pa, mean_iu)")
    k = NUM_CLASSES
    made_up = torch.tensor([30, 0, 25, 40, 0, 12, 33, 0, 18, 9, 900])
    cases = {
        "the test split's counts": torch.bincount(test_labels.flatten(), minlength=k),
        "counts where digits 1, 4 and 7 never occur": made_up,
        "counts where every class has as many pixels": torch.full((k,), 50),
    }
    for case, t in cases.items():
        matrix = np.zeros((k, k), np.int64)
        matrix[:, BACKGROUND] = t.numpy()  # every pixel predicted background
        truth = _matrix(matrix).compute()
        pa, miu = (float(v) for v in answer(t.clone()))
        _require(
            _close(pa, truth["pixel_accuracy"]),
            f"on {case}: that pixel accuracy is not the right pixels over all pixels; "
            "predicting background gets exactly the background's pixels right",
        )
        _require(
            not _close(miu, pa) or _close(truth["mean_iou"], pa),
            f"on {case}: your mean IU equals the pixel accuracy. That is background's IU "
            "alone: every digit that occurs has IU 0 and counts in the mean",
        )
        _require(
            _close(miu, truth["mean_iou"]),
            f"on {case}: that mean IU is not section 4's. A class absent from the truth and "
            "never predicted has no IU and is left out of the mean; a present digit has IU 0",
        )


@exercise
def mean_iu(answer: Any) -> None:
    """``mean_iu(n)`` of a confusion matrix, run on made-up matrices against the formulas."""
    _require(callable(answer), "answer is a function mean_iu(n) of a K x K NumPy array")
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 40, (11, 11)) + np.diag(rng.integers(200, 900, 11))
    empty = rng.integers(0, 50, (5, 5))
    empty[2, :] = empty[:, 2] = 0
    never_true = rng.integers(1, 50, (4, 4))
    never_true[3, :] = 0
    cases = {
        "an 11-class matrix": noisy,
        "a 5-class matrix whose class 2 is never true and never predicted": empty,
        "a 4-class matrix whose class 3 is predicted but never true": never_true,
    }
    for case, n in cases.items():
        truth = _matrix(n).compute()
        got = float(answer(n.copy()))
        _require(
            not math.isnan(got),
            f"on {case} your mean IU is nan: a class whose union is 0 has no IU; leave it out",
        )
        _require(
            not _close(got, truth["mean_accuracy"]) or _close(got, truth["mean_iou"]),
            f"on {case} you computed the mean accuracy: IU divides n_ii by the union, "
            "t_i + sum_j n_ji - n_ii, not by t_i",
        )
        _require(
            _close(got, truth["mean_iou"]),
            f"on {case} that is not the mean IU of section 4: per class, n_ii over its union "
            "(row sum + column sum - n_ii), then the mean over the classes whose union is not 0",
        )


@exercise
def frozen_upsampling(answer: Any, classifier: nn.Module, test: Any) -> None:
    """fcn1s with frozen bilinear upsampling, trained: its zero-initialised layers learned,
    and it learned digits: twice the mean IU of predicting background everywhere on ``test``
    (the small budget's runs here reached 2.9 and 4 times)."""
    _require(
        isinstance(answer, TinyFCN) and answer.variant == "fcn1s",
        "answer is the trained net: a TinyFCN of variant fcn1s",
    )
    fresh = TinyFCN("fcn1s", classifier, learnable_upsampling=False)
    for name in ("upscore2", "upscore_pool1"):
        kept = getattr(answer, name).weight
        _require(
            not kept.requires_grad, f"{name} still learns: build with learnable_upsampling=False"
        )
        _require(
            torch.equal(kept, getattr(fresh, name).weight),
            f"{name} is no longer the bilinear kernel it starts as",
        )
    learned = [answer.score_fr.weight[BACKGROUND], answer.score_pool1.weight]  # start at 0
    _require(
        all(w.detach().abs().sum() > 0 for w in learned),
        "the layers that start at zero (score_pool1, background's row of score_fr) are still "
        "zero: train the net with fit before setting answer",
    )
    labels = as_tensors(test)[1]
    floor = ConfusionMatrix(NUM_CLASSES)
    floor.update(torch.full_like(labels, BACKGROUND), labels)
    _require(
        evaluate(answer, test)["mean_iou"] > 2 * floor.compute()["mean_iou"],
        "your net's mean IU on test is not twice that of predicting background everywhere: it "
        "has hardly learned a digit. Train it with fit on train for section 3's BUDGET, from "
        "section 3's classifier",
    )


@exercise
def hardest_digit(answer: Any, net: nn.Module, test: Any) -> None:
    """The digit ``net`` segments worst on ``test``: no digit may have a lower IU."""
    digits = CLASS_NAMES[:BACKGROUND]
    _require(answer in digits, "answer is one of the ten digits' names in CLASS_NAMES: a string")
    iou = evaluate(net, test)["iou"][:BACKGROUND]
    mine = iou[digits.index(answer)]
    _require(not math.isnan(mine), f"no pixel of {answer} is in test or predicted: it has no IU")
    _require(
        all(math.isnan(v) or mine <= v for v in iou),
        f"the shipped fcn1s segments some digit worse than {answer}: compute every digit's IU "
        "(evaluate(...)['iou'], in CLASS_NAMES order) and take the lowest",
    )


# --- 04: FCN-8s on VOC ----------------------------------------------------------------------------


@exercise
def score_fr_size(answer: Any, net: nn.Module, size: tuple[int, int]) -> None:
    """score_fr's size for an image of ``size``, from the trunk's layer arithmetic."""
    _require(isinstance(answer, tuple | list) and len(answer) == 2, "answer is (rows, cols)")
    got, truth = tuple(int(v) for v in answer), output_size(net.trunk(), size)
    if got != truth:
        floored = copy.deepcopy(net.trunk())
        for layer in floored:
            if isinstance(layer, nn.MaxPool2d):
                layer.ceil_mode = False
        if got == output_size(floored, size):
            raise Wrong(f"{got} halves with floor: these poolings round up (ceil_mode=True)")
        raise Wrong(
            f"{got} is not score_fr's size: follow one side through conv1_1 (pad 100, kernel "
            "3), the five poolings that round up, and fc6's valid 7x7 kernel"
        )


@exercise
def smallest_unpadded_side(answer: Any, net: nn.Module) -> None:
    """The least square side with an fc6 output once conv1_1 pads by 1: that side gives one,
    one pixel less gives none."""
    answer = _whole(answer, "answer is a whole number: a side in pixels")
    _require(answer > 0, "a side is at least one pixel")
    trunk = copy.deepcopy(net.trunk())
    trunk.conv1_1.padding = (1, 1)
    _require(
        output_size(trunk, (answer, answer))[0] > 0,
        f"a {answer}x{answer} image gives no fc6 output: fc6's 7x7 kernel needs a pool5 map "
        "of at least 7 cells, and each of the five poolings halves (rounding up)",
    )
    _require(
        output_size(trunk, (answer - 1, answer - 1))[0] == 0,
        f"a {answer - 1}x{answer - 1} image still gives an fc6 output: the least side is asked",
    )


@exercise
def dice(answer: Any) -> None:
    """``dice(n)``: per-class Dice 2 n_ii / (t_i + sum_j n_ji), nan where a class is absent."""
    _require(callable(answer), "answer is a function dice(n) of a K x K array, per class")
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 40, (6, 6)) + np.diag(rng.integers(50, 400, 6))
    empty = noisy.copy()
    empty[4, :] = empty[:, 4] = 0
    for case, n in {"a 6-class matrix": noisy, "one whose class 4 never occurs": empty}.items():
        truth = np.array(_matrix(n).dice())
        got = np.asarray(answer(n.copy()), dtype=np.float64)
        _require(got.shape == truth.shape, f"on {case}: one Dice per class, got shape {got.shape}")
        _require(
            np.array_equal(np.isnan(got), np.isnan(truth)),
            f"on {case}: Dice is nan exactly where a class is neither true nor predicted",
        )
        iou = np.array(_matrix(n).compute()["iou"])
        _require(
            not np.allclose(got, iou, equal_nan=True),
            f"on {case} you computed IU: Dice counts the overlap twice, over t_i + sum_j n_ji",
        )
        _require(
            np.allclose(got, truth, rtol=1e-6, equal_nan=True),
            f"on {case} that is not Dice: 2 n_ii over (row sum + column sum), per class",
        )


# --- 05: your own net ---------------------------------------------------------------------------


@exercise
def decoder_parameters(answer: Any, net_class: type[nn.Module]) -> None:
    """The number of parameters of ``net_class().decoder``."""
    answer = _whole(answer, "answer is a whole number: the decoder's parameters")
    decoder = net_class().decoder
    weights = sum(p.numel() for name, p in decoder.named_parameters() if name.endswith("weight"))
    total = sum(p.numel() for p in decoder.parameters())
    _require(answer != weights, "that counts the kernels only: each layer has c_out biases too")
    _require(
        answer != sum(p.numel() for p in net_class().parameters()),
        "that is the whole net: the decoder alone is asked",
    )
    _require(
        answer == total,
        f"the decoder does not hold {answer} parameters: per ConvTranspose2d, "
        "c_in * c_out * k * k weights plus c_out biases; the ReLU holds none",
    )


@exercise
def score_size(answer: Any, net_class: type[nn.Module]) -> None:
    """The size of ``net_class()``'s score map for an h x w image."""
    _size_function(
        answer,
        net_class().eval(),
        "the score map's size",
        "not the size the net returns. Follow one side: each pooling floors (n // 2), each "
        "transposed convolution doubles",
    )


@exercise
def any_size(answer: Any, net_class: type[nn.Module]) -> None:
    """A net built on one ``net_class`` that scores every pixel of any image of >= 28x28.

    Sizes are not enough (a 1x1 convolution has them): the scores must be the inner net's
    for the image around each pixel. Away from the borders (where the padding is seen) the
    answer must equal the inner net run on the same image placed with the padding it chose
    on top and left (0 to 3 rows and columns), cropped back: a score map shifted by some
    pixels, or resized to the image, is not.
    """
    _require(isinstance(answer, nn.Module), "answer is an nn.Module")
    inner = [m for m in answer.modules() if isinstance(m, net_class)]
    _require(
        len(inner) == 1, f"answer is built on one {net_class.__name__} (it holds {len(inner)})"
    )
    net = inner[0]
    answer.eval()
    for h, w in [(28, 28), (29, 31), (62, 83), (64, 84), (101, 38)]:
        with torch.no_grad():
            shape = tuple(answer(torch.rand(2, 1, h, w)).shape)
        _require(shape == (2, 11, h, w), f"a {h}x{w} batch of 2 gives scores of shape {shape}")
    image, margin = torch.rand(1, 1, 133, 142, generator=torch.Generator().manual_seed(0)), 40
    with torch.no_grad():
        scores = answer(image)
        for top in range(4):
            for left in range(4):
                placed = F.pad(image, (left, -(142 + left) % 4, top, -(133 + top) % 4))
                theirs = net(placed)[..., top : top + 133, left : left + 142]
                inside = (..., slice(margin, -margin), slice(margin, -margin))
                if torch.allclose(scores[inside], theirs[inside], rtol=1e-4, atol=1e-5):
                    return
    raise Wrong(
        f"the scores do not line up with the pixels: at each pixel, away from the borders, "
        f"they must be the {net_class.__name__}'s scores for the image around that pixel. "
        "Pad the image with zeros (background), run the net, and crop where the image is: "
        "a shifted or resized score map is not that"
    )
