"""FCN-32s/16s/8s: shapes over many sizes, crops from geometry, names, staged init."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from fullfcn import builders
from fullfcn.builders import build, staged_init
from fullfcn.model import FCN
from tests.fullfcn.conftest import WIDTH
from tests.model_checks import ModelChecks

# Every size, small and odd included, and the typical VOC sizes.
# (ModelChecks runs the gradient check on the last size: keep it small.)
SIZES = [(1, 1), (1, 500), (500, 1), (97, 130), (31, 33), (33, 47)]


class _FCNChecks(ModelChecks):
    num_classes = 21
    variant: ClassVar[str]
    sizes: ClassVar = SIZES

    def make_model(self) -> FCN:
        torch.manual_seed(0)
        model = build(self.variant, width_divisor=WIDTH)
        # Non-zero scores so that shape, gradient and round-trip checks see real signals.
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.startswith("score"):
                    p.normal_(0, 0.01)
        return model


class TestFCN32s(_FCNChecks):
    variant = "fcn32s"
    expected_crop_offsets: ClassVar = {"upscore": 19}


class TestFCN16s(_FCNChecks):
    variant = "fcn16s"
    expected_crop_offsets: ClassVar = {"score_pool4": 5, "upscore16": 27}


class TestFCN8s(_FCNChecks):
    variant = "fcn8s"
    expected_crop_offsets: ClassVar = {"score_pool4": 5, "score_pool3": 9, "upscore8": 31}


class TestFCN8sAtOnce(_FCNChecks):
    variant = "fcn8s_atonce"
    expected_crop_offsets: ClassVar = {"score_pool4": 5, "score_pool3": 9, "upscore8": 31}


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce"])
def test_every_size_from_1_to_500(variant: str) -> None:
    """Every height and width 1..500: the pad of 100 and ceil pooling leave no size
    without a score, and every crop fits. The real forward runs on PyTorch's "meta"
    device, which computes shapes without arithmetic (the sizes above run for real)."""
    model = build(variant, width_divisor=WIDTH).to("meta")
    for n in range(1, 501):
        x = torch.empty(1, 3, n, 501 - n, device="meta")
        assert model(x).shape == (1, 21, n, 501 - n), n


def test_paper_layer_names_and_surgery() -> None:
    model = build("fcn8s", width_divisor=WIDTH)
    names = [n for n, _ in model.named_children()]
    convs = [n for n in names if n.startswith("conv")]
    assert convs == [
        "conv1_1",
        "conv1_2",
        "conv2_1",
        "conv2_2",
        "conv3_1",
        "conv3_2",
        "conv3_3",
        "conv4_1",
        "conv4_2",
        "conv4_3",
        "conv5_1",
        "conv5_2",
        "conv5_3",
    ]
    assert [n for n in names if n.startswith(("pool", "fc", "score", "upscore"))] == [
        "pool1",
        "pool2",
        "pool3",
        "pool4",
        "pool5",
        "fc6",
        "fc7",
        "score_fr",
        "score_pool4",
        "score_pool3",
        "upscore2",
        "upscore_pool4",
        "upscore8",
    ]
    assert model.conv1_1.padding == (100, 100)
    assert all(getattr(model, f"pool{i}").ceil_mode for i in range(1, 6))
    assert model.fc6.kernel_size == (7, 7) and model.fc7.kernel_size == (1, 1)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "upscore" in n)
    assert model.upscore8.kernel_size == (16, 16) and model.upscore8.stride == (8, 8)
    assert not model.score_pool3.weight.any()  # zero init, as the paper


def test_staged_init_copies_the_parent_and_adds_nothing_yet() -> None:
    """FCN-16s from FCN-32s: shared layers copied, the new pool4 scores exactly zero."""
    torch.manual_seed(0)
    parent = build("fcn32s", width_divisor=WIDTH)
    with torch.no_grad():
        parent.score_fr.weight.normal_(0, 0.01)
    child = staged_init(build("fcn16s", width_divisor=WIDTH), parent)
    shared = set(parent.state_dict()) & set(child.state_dict())
    assert {"fc6.weight", "score_fr.weight", "conv1_1.weight"} <= shared
    assert all(
        torch.equal(parent.state_dict()[k], child.state_dict()[k])
        for k in shared
        if not k.startswith("upscore")
    )
    fused = []
    child.score_pool4.register_forward_hook(lambda m, i, out: fused.append(out))
    with torch.no_grad():
        child.eval()(torch.rand(1, 3, 70, 90))
    assert not fused[0].any()


def test_atonce_scales_the_pool_features() -> None:
    torch.manual_seed(0)
    plain, atonce = build("fcn8s", width_divisor=WIDTH), build("fcn8s_atonce", width_divisor=WIDTH)
    atonce.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for m in (plain, atonce):
            m.score_pool3.bias.zero_()
            m.score_pool3.weight.fill_(1.0)
    taps, x = {}, torch.rand(1, 3, 40, 40)
    for m in (plain, atonce):
        m.score_pool3.register_forward_hook(lambda mod, inp, out, m=m: taps.__setitem__(m, inp[0]))
        m.eval()(x)
    assert torch.allclose(taps[atonce], taps[plain] * 1e-4)


def test_unknown_variant_and_imagenet_on_thin_net_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        build("fcn4s")
    with pytest.raises(ValueError, match="full-width"):
        build("fcn32s", weights="imagenet", width_divisor=WIDTH)


def test_builders_are_exposed() -> None:
    import fullfcn

    for name in ("fcn32s", "fcn16s", "fcn8s", "fcn8s_atonce"):
        model = getattr(fullfcn, name)(width_divisor=WIDTH, num_classes=5)
        assert model.variant == name and model.score_fr.out_channels == 5
        assert getattr(builders, name) is getattr(fullfcn, name)


def test_trunk_is_a_view_of_the_vgg_layers() -> None:
    """The trunk holds the net's own layers under their paper names and adds no keys."""
    model = build("fcn8s", width_divisor=WIDTH).eval()
    trunk = model.trunk()
    names = [n for n, _ in trunk.named_children()]
    assert names[0] == "conv1_1" and names[-1] == "drop7" and "pool4" in names
    assert all(module is getattr(model, name) for name, module in trunk.named_children())
    assert set(model.state_dict()) == set(build("fcn8s", width_divisor=WIDTH).state_dict())
    assert not any(k.startswith("trunk") or k[0].isdigit() for k in model.state_dict())
    taps = []
    model.fc7.register_forward_hook(lambda mod, inp, out: taps.append(out))
    with torch.no_grad():
        x = torch.rand(1, 3, 40, 40)
        model(x)
        assert torch.equal(model.relu7(trunk(x)), model.relu7(taps[0]))
