"""fc->conv on the real VGG16, and import of pytorch-fcn's Caffe-converted checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from fullfcn.builders import build, load_model
from fullfcn.model import FCN
from fullfcn.pytorch_fcn import check_state_dict, to_pytorch_fcn
from fullfcn.transforms import CAFFE, TORCHVISION
from tests.fullfcn.conftest import WIDTH
from tinyfcn.convert import convolutionalize

# The keys and shapes of pytorch-fcn's fcn8s_from_caffe.pth (its FCN8s.state_dict()).
_CONVS = {
    "conv1_1": (64, 3),
    "conv1_2": (64, 64),
    "conv2_1": (128, 64),
    "conv2_2": (128, 128),
    "conv3_1": (256, 128),
    "conv3_2": (256, 256),
    "conv3_3": (256, 256),
    "conv4_1": (512, 256),
    "conv4_2": (512, 512),
    "conv4_3": (512, 512),
    "conv5_1": (512, 512),
    "conv5_2": (512, 512),
    "conv5_3": (512, 512),
}
PUBLISHED_FCN8S = {
    **{f"{n}.weight": (o, i, 3, 3) for n, (o, i) in _CONVS.items()},
    **{f"{n}.bias": (o,) for n, (o, _) in _CONVS.items()},
    "fc6.weight": (4096, 512, 7, 7),
    "fc6.bias": (4096,),
    "fc7.weight": (4096, 4096, 1, 1),
    "fc7.bias": (4096,),
    "score_fr.weight": (21, 4096, 1, 1),
    "score_fr.bias": (21,),
    "score_pool3.weight": (21, 256, 1, 1),
    "score_pool3.bias": (21,),
    "score_pool4.weight": (21, 512, 1, 1),
    "score_pool4.bias": (21,),
    "upscore2.weight": (21, 21, 4, 4),
    "upscore8.weight": (21, 21, 16, 16),
    "upscore_pool4.weight": (21, 21, 4, 4),
}


@pytest.mark.xdist_group("fullfcn-heavy")
def test_convolutionalized_vgg16_gives_torchvision_logits_and_fcn_holds_its_weights() -> None:
    """Without the pad, the converted VGG16 reproduces the classifier on 224x224; the FCN
    is that network (same weights under the paper's names) with the pad and the new head."""
    torch.manual_seed(0)
    vgg = torchvision.models.vgg16().eval()
    torch.manual_seed(0)  # the same draws: the FCN's VGG16 gets the same random weights
    fcn = FCN("fcn32s", 21).eval()
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        logits = vgg(x)
        conv = convolutionalize(vgg, (224, 224)).eval()(x)
    assert conv.shape == (2, 1000, 1, 1)
    torch.testing.assert_close(conv.flatten(1), logits, rtol=1e-4, atol=1e-4)
    assert torch.equal(fcn.fc6.weight, vgg.classifier[0].weight.reshape(4096, 512, 7, 7))
    assert torch.equal(fcn.fc7.weight.flatten(1), vgg.classifier[3].weight)
    assert torch.equal(fcn.conv5_3.weight, vgg.features[28].weight)


@pytest.mark.xdist_group("fullfcn-heavy")
def test_pytorch_fcn_checkpoint_round_trip(tmp_path: Path) -> None:
    """A state dict with the published names and shapes loads, with Caffe preprocessing,
    and comes back out unchanged."""
    gen = torch.Generator().manual_seed(0)
    published = {k: torch.randn(s, generator=gen) for k, s in PUBLISHED_FCN8S.items()}
    path = tmp_path / "fcn8s_from_caffe.pth"
    torch.save(published, path)
    model = load_model(path)
    assert model.variant == "fcn8s" and model.preprocess is CAFFE
    exported = to_pytorch_fcn(model)
    assert exported.keys() == published.keys()
    assert all(torch.equal(exported[k], published[k]) for k in published)
    assert build("fcn8s", weights=path).preprocess is CAFFE


def test_wrong_checkpoint_for_the_variant_is_named(tmp_path: Path) -> None:
    path = tmp_path / "fcn32s_from_caffe.pth"
    torch.save(to_pytorch_fcn(build("fcn32s", width_divisor=WIDTH)), path)
    with pytest.raises(ValueError, match="holds a fcn32s model, not fcn16s"):
        load_model(path, "fcn16s")
    with pytest.raises(ValueError, match="holds a fcn32s model, not fcn16s"):
        build("fcn16s", weights=path, width_divisor=WIDTH)  # the export records its variant
    bare = tmp_path / "weights.pth"  # a plain dict of tensors: only the keys can tell
    torch.save(dict(to_pytorch_fcn(build("fcn32s", width_divisor=WIDTH))), bare)
    with pytest.raises(ValueError, match=r"lacks score_pool4\.weight .*fcn32s"):
        build("fcn16s", weights=bare, width_divisor=WIDTH)
    with pytest.raises(ValueError, match=r"conv1_1\.weight has shape \(4, 3, 3, 3\)"):
        build("fcn32s", weights=path, width_divisor=WIDTH // 2)  # other widths: shapes differ


def test_training_script_format_is_accepted(tmp_path: Path) -> None:
    """pytorch-fcn's trainer saves ``{"model_state_dict": ..., "optim_state_dict": ...}``."""
    source = build("fcn16s", width_divisor=WIDTH)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"model_state_dict": to_pytorch_fcn(source), "epoch": 3}, path)
    model = build("fcn16s", weights=path, width_divisor=WIDTH)
    assert torch.equal(model.fc6.weight, source.fc6.weight)


def test_not_a_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pth"
    bad.write_text("hello")
    with pytest.raises(ValueError, match="not a PyTorch weights file"):
        load_model(bad)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pth")


def test_check_state_dict_names_the_unexpected_key() -> None:
    model = build("fcn32s", width_divisor=WIDTH)
    state = dict(model.state_dict(), extra=torch.zeros(1))
    with pytest.raises(ValueError, match="unexpected key extra"):
        check_state_dict(model, state, "x.pth")


def test_preprocessing_by_origin() -> None:
    """Caffe: BGR minus the mean on 0..255; torchvision: RGB standardised. Both invert."""
    image = torch.tensor([[[10]], [[20]], [[30]]], dtype=torch.uint8)  # R, G, B
    caffe = CAFFE(image)
    assert torch.allclose(
        caffe.flatten(), torch.tensor([30 - 104.00698793, 20 - 116.66876762, 10 - 122.67891434])
    )
    tv = TORCHVISION(image)
    assert torch.allclose(
        tv.flatten(),
        (torch.tensor([10, 20, 30]) / 255 - torch.tensor([0.485, 0.456, 0.406]))
        / torch.tensor([0.229, 0.224, 0.225]),
    )
    for p in (CAFFE, TORCHVISION):
        assert torch.equal(p.denormalize(p(image)), image)


def _atonce_files(tmp_path: Path, model: FCN) -> dict[str, Path]:
    """An at-once model in each format that must come back as at-once."""
    state = dict(to_pytorch_fcn(model))  # a plain dict: no metadata
    files = {
        "published name": tmp_path / "fcn8s-atonce_from_caffe.pth",
        "pytorch-fcn trainer": tmp_path / "checkpoint.pth.tar",
        "our export": tmp_path / "export.pth",
        "fullfcn-train checkpoint": tmp_path / "ours.pt",
    }
    torch.save(state, files["published name"])
    torch.save({"arch": "FCN8sAtOnce", "model_state_dict": state, "iteration": 7},
               files["pytorch-fcn trainer"])  # fmt: skip
    torch.save(to_pytorch_fcn(model), files["our export"])
    torch.save({"variant": model.variant, "width_divisor": WIDTH, "preprocess": "torchvision",
                "model": model.state_dict()}, files["fullfcn-train checkpoint"])  # fmt: skip
    return files


def test_atonce_is_recognised_in_every_format_and_outputs_match(tmp_path: Path) -> None:
    """Loaded as plain FCN-8s, at-once weights give other scores (no pool scaling): the
    variant must come from the file, and the loaded net must compute the original's output."""
    torch.manual_seed(0)
    atonce = build("fcn8s_atonce", width_divisor=WIDTH).eval()
    with torch.no_grad():
        for name, p in atonce.named_parameters():
            if name.startswith("score"):
                p.normal_(0, 1.0)
    x = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        expected = atonce(x)
        plain = build("fcn8s", width_divisor=WIDTH).eval()
        plain.load_state_dict(atonce.state_dict())
        assert not torch.allclose(plain(x), expected)  # the trap is real
    for kind, path in _atonce_files(tmp_path, atonce).items():
        model = load_model(path).eval()
        assert model.variant == "fcn8s_atonce", kind
        # pytorch-fcn's files are Caffe's models; ours keep the normalisation they had
        ours = kind.startswith(("our", "fullfcn"))
        assert model.preprocess is (TORCHVISION if ours else CAFFE), kind
        with torch.no_grad():
            torch.testing.assert_close(model(x), expected, msg=kind)
        with pytest.raises(ValueError, match="holds a fcn8s_atonce model, not fcn8s"):
            load_model(path, "fcn8s")


def test_bare_fcn8s_weights_are_never_guessed(tmp_path: Path) -> None:
    """Same keys, two nets: a bare state dict under an uninformative name is refused
    without a variant, loads as the one asked for, and the published plain name is FCN-8s."""
    state = dict(to_pytorch_fcn(build("fcn8s", width_divisor=WIDTH)))
    bare = tmp_path / "weights.pth"
    torch.save(state, bare)
    with pytest.raises(ValueError, match="give --variant fcn8s or --variant fcn8s_atonce"):
        load_model(bare)
    assert load_model(bare, "fcn8s_atonce").variant == "fcn8s_atonce"
    assert load_model(bare, "fcn8s").variant == "fcn8s"
    published = tmp_path / "fcn8s_from_caffe.pth"
    torch.save(state, published)
    assert load_model(published).variant == "fcn8s"
    with pytest.raises(ValueError, match="holds a fcn8s model, not fcn8s_atonce"):
        build("fcn8s_atonce", weights=published, width_divisor=WIDTH)
