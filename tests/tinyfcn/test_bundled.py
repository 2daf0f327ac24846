"""The pretrained tiny FCNs shipped in the package: they load offline and they segment.

The scores on 1,000 test images of real M2NIST are the make script's, recorded in
``provenance.json``; here each net is scored again on a split composed from the bundled
MNIST sample's *test* digits (no file outside the package needed), against floors set well
below what the shipped weights measured (see FLOORS).
"""

from __future__ import annotations

import socket
from dataclasses import asdict

import pytest
import torch

from m2nist.mnist import KNOWN_MD5
from tinyfcn import VARIANTS, TinyFCN, TrainConfig, evaluate, load_m2nist, pretrained
from tinyfcn.bundled import provenance, weights_dir

#: mIoU floors on 300 test images composed from the sample (``seed=5``). The shipped weights
#: measured fcn4s 0.767, fcn2s 0.883, fcn1s 0.901, article 0.476 (pixel accuracy
#: 0.974-0.997); an untrained net scores below 0.1. The floors leave ~0.1 for re-made weights.
FLOORS = {"fcn4s": 0.65, "fcn2s": 0.75, "fcn1s": 0.8, "article": 0.4}


@pytest.fixture(scope="module")
def sample_test() -> object:
    return load_m2nist(n_train=1, n_test=300, seed=5, source="sample")[1]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pretrained() tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_loads_offline_ready_to_segment(
    variant: str, offline: None, sample_test: object
) -> None:
    model = pretrained(variant)
    assert isinstance(model, TinyFCN) and model.variant == variant and not model.training
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        assert model(torch.rand(2, 1, 64, 84)).shape == (2, 11, 64, 84)
    metrics = evaluate(model, sample_test)
    assert metrics["mean_iou"] > FLOORS[variant], metrics


def test_the_files_are_plain_float16_state_dicts() -> None:
    for variant in VARIANTS:
        weights = torch.load(weights_dir() / f"{variant}.pt", weights_only=True)
        expected = TinyFCN(variant).state_dict()
        assert weights.keys() == expected.keys()
        assert all(w.dtype == torch.float16 for w in weights.values())


def test_provenance_records_every_variant_and_its_score() -> None:
    """Made from the default recipe (only the budget, no clock and the source differ; one
    thread, the default), on the original MNIST files, scored on 1,000 test images; fcn1s
    reaches mIoU 0.92."""
    records = provenance()
    assert set(records) == set(VARIANTS)
    default = asdict(TrainConfig())
    for variant, record in records.items():
        recipe = record["recipe"]
        assert recipe["variant"] == variant and recipe["threads"] == record["threads"] == 1
        changed = {"variant", "epochs", "seconds", "eval_every", "source"}
        for field in set(default) - changed:
            assert recipe[field] == default[field], (variant, field)
        assert recipe["epochs"] > 0 and recipe["seconds"] is None
        assert set(record["mnist_md5"].values()) == set(KNOWN_MD5.values())
        assert record["test"]["images"] == 1000 and 0.0 < record["test"]["mean_iou"] <= 1.0
        assert record["steps"] > 0 and record["torch"] and record["git"]["commit"]
    assert records["fcn1s"]["test"]["mean_iou"] >= 0.92


def test_an_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant 'fcn8s'"):
        pretrained("fcn8s")
