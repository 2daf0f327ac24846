"""Every exercise check accepts a right answer and catches a wrong one with a hint that gives
no reference value (tinyfcn.exercises); unanswered, it says so, or fails under a grader.

Each row: the check, what the notebook passes it, a right answer, wrong answers a student
makes, and the reference values no hint may contain (beyond the numbers of the wrong answer
itself, which a hint may quote back).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from functools import cache
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import m2nist
from fullfcn import build
from m2nist.legacy import replay_2018, split_leak, stand_in_digits
from tinyfcn import (
    INPUT_SIZE,
    MnistClassifier,
    TinyFCN,
    convolutionalize,
    exercises,
    fit,
    output_size,
    pretrained,
)
from tinyfcn.data import BACKGROUND, CLASS_NAMES, NUM_CLASSES, as_tensors
from tinyfcn.evaluation import evaluate

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w])")


@cache
def sources18() -> np.ndarray:
    digits, labels = stand_in_digits("sample")
    return replay_2018(digits, labels, n=2000, seed=1234)[2]


@cache
def small(n: int = 40, **kwargs: Any) -> m2nist.M2NISTArrays:
    return m2nist.generate(n, split="test", seed=0, source="sample", **kwargs)


class EncDec(nn.Module):
    """Notebook 05's encoder-decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, NUM_CLASSES, 4, stride=2, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class Wrapped(nn.Module):
    """An EncDec behind a function of the image and the net (the answers to 05's exercise 3)."""

    def __init__(self, how: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.net, self.how = EncDec(), how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.how(self.net, x)


def pad_crop(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # the solution
    h, w = x.shape[-2:]
    return net(F.pad(x, (0, -w % 4, 0, -h % 4)))[..., :h, :w]


def centred(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # right too: pads both sides
    h, w = x.shape[-2:]
    top, left = (-h % 4) // 2, (-w % 4) // 2
    padded = F.pad(x, (left, -w % 4 - left, top, -h % 4 - top))
    return net(padded)[..., top : top + h, left : left + w]


def shifted(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # the right size, 8 px off
    return torch.roll(pad_crop(net, x), 8, dims=-1)


def resized(net: nn.Module, x: torch.Tensor) -> torch.Tensor:  # interpolates the scores
    return F.interpolate(net(x), size=x.shape[-2:], mode="bilinear")


def leak_counting_empty_slots(sources: np.ndarray, fraction: float) -> float:
    cut = int(fraction * len(sources))
    seen = set(sources[:cut, :, 0].ravel().tolist())  # -1 included: the typical slip
    return float(np.mean([bool(seen & set(row.tolist())) for row in sources[cut:, :, 0]]))


def gap(p: np.ndarray, q: np.ndarray) -> int:
    return int(max(q[0] - p[2], p[0] - q[2], q[1] - p[3], p[1] - q[3]))


def floor_scores(t: torch.Tensor) -> tuple[float, float]:
    pa = float(t[BACKGROUND] / t.sum())
    return pa, pa / int((t > 0).sum())


def mean_iu(n: np.ndarray) -> float:
    hits, union = np.diag(n), n.sum(0) + n.sum(1) - np.diag(n)
    return float(np.mean(hits[union > 0] / union[union > 0]))


def dice(n: np.ndarray) -> np.ndarray:
    both = (n.sum(0) + n.sum(1)).astype(float)
    return np.where(both > 0, 2 * np.diag(n) / np.where(both > 0, both, 1), np.nan)


@cache
def barely_trained(learnable: bool) -> TinyFCN:
    """A few steps from a random classifier: its zero-initialised layers moved, no more."""
    torch.manual_seed(0)
    net = TinyFCN("fcn1s", MnistClassifier(), learnable_upsampling=learnable)
    fit(net, small(16), epochs=0.5, progress=False)
    return net


def frozen_and_trained() -> TinyFCN:
    """Frozen bilinear upsampling around the shipped fcn1s's other trained layers."""
    net = TinyFCN("fcn1s", learnable_upsampling=False)
    shipped = pretrained("fcn1s").state_dict()
    kept = {k: v for k, v in shipped.items() if not k.startswith(("upscore2", "upscore_pool1"))}
    net.load_state_dict(kept, strict=False)
    return net


def hardest() -> str:
    iou = evaluate(pretrained("fcn1s"), small())["iou"][:BACKGROUND]
    return CLASS_NAMES[int(np.nanargmin(iou))]


def sizes_of(net: nn.Module) -> list[str]:
    with torch.no_grad():
        return [str(tuple(net(torch.zeros(1, 1, *s)).shape[-2:])) for s in exercises.SIZES]


FCN16S = {"score_pool4": 5, "upscore16": 27}
VOC_SIZE = (333, 444)

# name: (check, context, right answers, wrong answers, forbidden values or substrings)
CASES: dict[str, tuple[Callable, Callable[[], tuple], list, list, Callable[[], list]]] = {
    "01-1 third digit": (
        exercises.third_digit_chance,
        lambda: (sources18(),),
        [0.1],
        [1 / 11, 0.2, 0.5, 2],
        lambda: [0.1],
    ),
    "01-2 background": (
        exercises.background_share,
        lambda: (small(),),
        [float((small().labels == BACKGROUND).mean())],
        [float((small().labels == 0).mean()), int((small().labels == BACKGROUND).sum())],
        lambda: [round(float((small().labels == BACKGROUND).mean()), k) for k in (2, 3, 4)],
    ),
    "01-3 one-hot": (
        exercises.one_hot,
        lambda: (small().labels,),
        [np.eye(NUM_CLASSES, dtype=np.uint8)[small().labels]],
        [
            np.eye(NUM_CLASSES, dtype=np.int64)[small().labels],
            np.eye(10, dtype=np.uint8)[small().labels.clip(0, 9)],
            np.roll(np.eye(NUM_CLASSES, dtype=np.uint8)[small().labels], 1, axis=-1),
        ],
        lambda: [],
    ),
    "01-4 leak": (
        exercises.split_leak,
        lambda: (),
        [split_leak],
        [leak_counting_empty_slots, 0.3],
        lambda: [round(1 / 3, k) for k in (2, 3, 4)],
    ),
    "01-5 margin": (
        exercises.box_gap,
        lambda: (small(60, digits=2, margin=4).boxes, 4),
        [gap],
        [
            lambda p, q: int(max(q[0] - p[2], q[1] - p[3])),  # one order of the boxes only
            lambda p, q: int(
                max(q[0] - p[2] - 1, p[0] - q[2] - 1, q[1] - p[3] - 1, p[1] - q[3] - 1)
            ),
        ],
        lambda: [],
    ),
    "02-1 heatmap size": (
        exercises.heatmap_size,
        lambda: (),
        [lambda h, w: ((h - 28) // 4 + 1, (w - 28) // 4 + 1)],
        [lambda h, w: (h // 4, w // 4), lambda h, w: ((h - 28) // 4, (w - 28) // 4)],
        lambda: sizes_of(convolutionalize(MnistClassifier(), INPUT_SIZE)),
    ),
    "02-2 receptive field": (
        exercises.cut_receptive_field,
        lambda: (),
        [20, np.int64(20), 20.0],  # a whole number of any type
        [28, 24, 12, 20.5, "20"],
        lambda: [20],
    ),
    "02-3 crops of fcn2s": (
        exercises.crops,
        lambda: (TinyFCN("fcn2s"),),
        [{"score_pool1": 4, "score": 3}, {"score_pool1": Fraction(8, 2), "score": np.int64(3)}],
        [{"score_pool1": 3, "score": 3}, {"score_pool1": 4, "score": 12}, {"score": 3}],
        lambda: [4],
    ),
    "02-4 least padding": (
        exercises.least_padding,
        lambda: (),
        [13, np.int64(13)],
        [10, 12, 14, 20, -1, True],
        lambda: [13],
    ),
    "03-1 all background": (
        exercises.all_background,
        lambda: (as_tensors(small())[1],),
        [floor_scores],
        [
            lambda t: floor_scores(t)[:1] * 2,  # mean IU = pixel accuracy: digits forgotten
            lambda t: (floor_scores(t)[0], floor_scores(t)[0] / len(t)),  # absent classes kept
            lambda t: (float(t[0] / t.sum()), 0.0),
        ],  # class 0 taken for background
        lambda: list(floor_scores(torch.bincount(as_tensors(small())[1].flatten()))),
    ),
    "03-2 mean IU": (
        exercises.mean_iu,
        lambda: (),
        [mean_iu],
        [
            lambda n: float(np.mean(np.diag(n) / n.sum(1))),  # mean accuracy (nan on class 2)
            lambda n: float(np.nanmean(np.diag(n) / n.sum(1))),  # mean accuracy, nan left out
            lambda n: float(np.mean(np.diag(n) / (n.sum(0) + n.sum(1) - np.diag(n)))),
        ],
        lambda: [],
    ),
    "03-3 frozen upsampling": (
        exercises.frozen_upsampling,
        lambda: (MnistClassifier(), small()),
        [frozen_and_trained()],
        [TinyFCN("fcn1s", learnable_upsampling=False), barely_trained(True), barely_trained(False)],
        lambda: [],
    ),
    "03-4 hardest digit": (
        exercises.hardest_digit,
        lambda: (pretrained("fcn1s"), small()),
        [hardest()],
        [next(d for d in CLASS_NAMES[:BACKGROUND] if d != hardest()), "background", 3],
        lambda: [int(hardest())],
    ),
    "04-1 crops of FCN-16s": (
        exercises.crops,
        lambda: (build("fcn16s", width_divisor=16),),
        [FCN16S],
        [{"score_pool4": 5, "upscore16": 19}, {"score_pool4": 4, "upscore16": 27}, (5, 27)],
        lambda: [5, 27],
    ),
    "04-2 score_fr size": (
        exercises.score_fr_size,
        lambda: (build("fcn8s", width_divisor=16), VOC_SIZE),
        [output_size(build("fcn8s", width_divisor=16).trunk(), VOC_SIZE)],
        [(10, 14), (VOC_SIZE[0] // 32, VOC_SIZE[1] // 32), 11],
        lambda: list(output_size(build("fcn8s", width_divisor=16).trunk(), VOC_SIZE)),
    ),
    "04-3 smallest side": (
        exercises.smallest_unpadded_side,
        lambda: (build("fcn8s", width_divisor=16),),
        [193],
        [192, 224, 200],
        lambda: [193],
    ),
    "04-4 Dice": (
        exercises.dice,
        lambda: (),
        [dice],
        [
            lambda n: np.diag(n) / (n.sum(0) + n.sum(1) - np.diag(n)),  # IU
            lambda n: 2 * np.diag(n) / (n.sum(0) + n.sum(1) + 1e-9),
        ],  # 0 where absent, not nan
        lambda: [],
    ),
    "05-1 decoder parameters": (
        exercises.decoder_parameters,
        lambda: (EncDec,),
        [38_443, 38_443.0],
        [38_400, sum(p.numel() for p in EncDec().parameters()), 32_800, "38443"],
        lambda: [38_443, 38443],
    ),
    "05-2 score size": (
        exercises.score_size,
        lambda: (EncDec,),
        [lambda h, w: (4 * (h // 4), 4 * (w // 4))],
        [lambda h, w: (h, w), lambda h, w: (h // 4 * 4 + 4, w // 4 * 4 + 4)],
        lambda: sizes_of(EncDec()),
    ),
    "05-3 a net for every size": (
        exercises.any_size,
        lambda: (EncDec,),
        [Wrapped(pad_crop), Wrapped(centred)],
        [nn.Conv2d(1, NUM_CLASSES, 1), Wrapped(shifted), Wrapped(resized), EncDec()],
        lambda: [],
    ),
}


def numbers(text: str) -> set[float]:
    return {float(v) for v in NUMBER.findall(text)}


@pytest.mark.parametrize("name", CASES)
def test_a_right_answer_is_correct(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    check, context, rights, _, _ = CASES[name]
    for right in rights:
        check(right, *context())
        assert capsys.readouterr().out.strip() == exercises.CORRECT


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # a wrong answer's nan
@pytest.mark.parametrize("name", CASES)
def test_a_wrong_answer_gets_a_hint_without_the_value(name: str) -> None:
    check, context, _, wrongs, forbidden = CASES[name]
    for wrong in wrongs:
        with pytest.raises(exercises.Wrong) as caught:
            check(wrong, *context())
        hint = str(caught.value)
        assert len(hint) > 20, f"{name}: an empty hint for {wrong!r}"
        quoted = numbers(repr(wrong)) if not callable(wrong) else set()
        for value in forbidden():
            if isinstance(value, str):
                assert value not in hint, f"{name}: the hint {hint!r} gives {value}"
            else:
                given = {v for v in numbers(hint) - quoted if np.isclose(v, value, rtol=1e-6)}
                assert not given, f"{name}: the hint {hint!r} gives {value}"


@pytest.mark.parametrize("name", ["01-1 third digit", "05-1 decoder parameters"])
def test_unanswered_prints_and_fails_only_under_a_grader(
    name: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    check, context, _, _, _ = CASES[name]
    check(None, *context())
    assert capsys.readouterr().out.strip() == exercises.NOT_ANSWERED
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(exercises.NotAnswered):
        check(None, *context())
