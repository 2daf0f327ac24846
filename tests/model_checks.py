"""Checks every segmentation model in the project must pass, written once.

`tinyfcn` and `fullfcn` test classes subclass :class:`ModelChecks`, define how to build a
(small, fast) model and which sizes to sweep, and inherit these tests. A model here is any
module mapping ``(N, in_channels, H, W)`` images to ``(N, num_classes, H, W)`` scores,
exposing the crops its geometry computed as ``model.crop_offsets`` and the layer paths they
were computed from as ``model.crop_paths()`` (:mod:`tinyfcn.fcn`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from tinyfcn.fcn import crop_plan


class ModelChecks:
    """Mixin of pytest tests; subclasses set the attributes and ``make_model``."""

    num_classes: int
    in_channels: int = 3
    #: (H, W) pairs whose output must have exactly the input's size.
    sizes: ClassVar[Sequence[tuple[int, int]]] = ()
    #: Crop offsets the paper (or a hand calculation) gives for this variant.
    expected_crop_offsets: ClassVar[dict[str, int]] = {}

    def make_model(self) -> nn.Module:
        raise NotImplementedError

    def _input(self, h: int, w: int, batch: int = 1) -> torch.Tensor:
        return torch.rand(
            batch, self.in_channels, h, w, generator=torch.Generator().manual_seed(h * 1009 + w)
        )

    def test_output_has_input_size(self) -> None:
        model = self.make_model().eval()
        assert self.sizes, "a subclass must list sizes to sweep"
        with torch.no_grad():
            for h, w in self.sizes:
                out = model(self._input(h, w))
                assert out.shape == (1, self.num_classes, h, w), (h, w, tuple(out.shape))

    def test_crop_offsets_come_from_geometry(self) -> None:
        model = self.make_model()
        assert dict(model.crop_offsets) == self.expected_crop_offsets
        assert crop_plan(model.crop_paths()) == model.crop_offsets

    def test_every_1x1_layer_is_a_plain_convolution(self) -> None:
        """The score layers are ``nn.Conv2d`` itself: nothing tuned to a machine in the idea."""
        ones = [m for m in self.make_model().modules() if getattr(m, "kernel_size", 0) == (1, 1)]
        assert ones and all(type(m) is nn.Conv2d for m in ones)

    def test_gradients_reach_every_trainable_parameter(self) -> None:
        model = self.make_model().train()
        h, w = self.sizes[-1]
        out = model(self._input(h, w, batch=2))
        # A loss that depends on every class at every pixel: no parameter may be cut off.
        (out * torch.randn_like(out)).sum().backward()
        for name, p in model.named_parameters():
            if p.requires_grad:
                assert p.grad is not None, f"{name} gets no gradient"
                assert torch.isfinite(p.grad).all(), f"{name} has a non-finite gradient"

    def test_state_dict_round_trip(self) -> None:
        model = self.make_model().eval()
        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        buffer.seek(0)
        clone = self.make_model().eval()
        h, w = self.sizes[0]
        x = self._input(h, w)
        with torch.no_grad():
            # make_model() may be seeded: scramble the clone so only loading can restore it.
            for p in clone.parameters():
                p.add_(torch.randn_like(p))
            assert not torch.equal(model(x), clone(x))
            clone.load_state_dict(torch.load(buffer, weights_only=True))
            assert torch.equal(model(x), clone(x))
