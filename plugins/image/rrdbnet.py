"""The ESRGAN / Real-ESRGAN network (RRDBNet) and the reading of its two state-dict layouts.

ESRGAN-family upscalers (ESRGAN, Real-ESRGAN, 4x-UltraSharp, most community "4x-…" models) share one network:
a first convolution, a trunk of residual-in-residual dense blocks, nearest-neighbour ×2 up-sampling steps each
followed by a convolution, and two last convolutions. Two key layouts are in use: BasicSR's (``conv_first``,
``body.N.rdb1.conv1``, ``conv_up1``…; Real-ESRGAN, where a ×2 or ×1 model first folds pixels into channels with
``pixel_unshuffle``) and the original ESRGAN repository's (``model.0``, ``model.1.sub.N.RDB1.conv1.0``…).
:func:`read_rrdbnet` recognises both from the tensor names and shapes alone, so the scale and sizes come from the
file, and builds the network.

Why not spandrel: it detects these (and 30 other architectures), but it requires torchvision, whose PyPI wheels
are CUDA builds that do not load with Studiolo's CPU torch (and pull a multi-GB CUDA torch when installed). This
module reads exactly spandrel's ESRGAN layouts; it imports torch at module level, so only the worker imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

__all__ = ["RRDBNet", "RRDBShape", "NotRRDBNet", "read_rrdbnet"]


class NotRRDBNet(ValueError):
    """The state dict is not an ESRGAN-family upscaler's; the message says what was missing."""


@dataclass(frozen=True)
class RRDBShape:
    """The sizes of an RRDBNet, read from its weights."""

    in_channels: int  # image channels (3: RGB)
    out_channels: int
    features: int  # nf
    growth: int  # gc, the channels each dense-block convolution adds
    blocks: int  # nb, the residual-in-residual dense blocks
    upsamples: int  # ×2 steps
    unshuffle: int  # 1, or the pixel_unshuffle factor of Real-ESRGAN's ×2 (2) and ×1 (4) models

    @property
    def scale(self) -> int:
        """How many times larger the output is than the input, along each side."""
        return 2 ** self.upsamples // self.unshuffle


class _DenseBlock(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        for k in range(1, 6):
            out = features if k == 5 else growth
            setattr(self, f"conv{k}", nn.Conv2d(features + (k - 1) * growth, out, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x]
        for k in range(1, 5):
            parts.append(functional.leaky_relu(getattr(self, f"conv{k}")(torch.cat(parts, 1)), 0.2))
        return self.conv5(torch.cat(parts, 1)) * 0.2 + x


class _RRDB(nn.Module):
    def __init__(self, features: int, growth: int) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = (_DenseBlock(features, growth) for _ in range(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN's generator, in BasicSR's layout (the names :func:`read_rrdbnet` maps both layouts to)."""

    def __init__(self, shape: RRDBShape) -> None:
        super().__init__()
        self.shape = shape
        nf = shape.features
        self.conv_first = nn.Conv2d(shape.in_channels * shape.unshuffle ** 2, nf, 3, 1, 1)
        self.body = nn.Sequential(*(_RRDB(nf, shape.growth) for _ in range(shape.blocks)))
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.ups = nn.ModuleList(nn.Conv2d(nf, nf, 3, 1, 1) for _ in range(shape.upsamples))
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, shape.out_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.shape.unshuffle > 1:
            x = functional.pixel_unshuffle(x, self.shape.unshuffle)
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for up in self.ups:
            feat = functional.leaky_relu(up(functional.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
        return self.conv_last(functional.leaky_relu(self.conv_hr(feat), 0.2))


_OLD_BLOCK = re.compile(r"model\.1\.sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)")
_OLD_TOP = re.compile(r"model\.(\d+)\.(weight|bias)")
_NEW_UP = re.compile(r"conv_up(\d+)\.(weight|bias)")


def read_rrdbnet(state: Mapping[str, torch.Tensor]) -> RRDBNet:
    """The RRDBNet whose weights are ``state`` (either layout), loaded and in eval mode; :class:`NotRRDBNet` when
    ``state`` is not an RRDBNet's (names or shapes that do not fit)."""
    renamed = _from_old_layout(state) if "model.0.weight" in state else dict(state)
    if "conv_first.weight" not in renamed:
        raise NotRRDBNet("it has no first convolution (conv_first or model.0)")
    for name in list(renamed):
        if match := _NEW_UP.fullmatch(name):
            renamed[f"ups.{int(match[1]) - 1}.{match[2]}"] = renamed.pop(name)
    shape = _shape(renamed)
    net = RRDBNet(shape)
    try:
        net.load_state_dict(renamed, strict=True)
    except RuntimeError as exc:
        raise NotRRDBNet(f"its weights do not fit an ESRGAN network ({str(exc).splitlines()[0]})") from None
    return net.eval()


def _from_old_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original ESRGAN repository's names mapped to BasicSR's: ``model.0`` the first convolution,
    ``model.1.sub.N`` the blocks (the last one the trunk's convolution), then the up-sampling convolutions and the
    last two (every other index: the activations and up-samplers between them hold no weights)."""
    renamed: dict[str, torch.Tensor] = {}
    tops: dict[int, dict[str, torch.Tensor]] = {}
    trunk = max((int(m[1]) for name in state if (m := re.fullmatch(r"model\.1\.sub\.(\d+)\.weight", name))),
                default=None)
    for name, tensor in state.items():
        if match := _OLD_BLOCK.fullmatch(name):
            renamed[f"body.{match[1]}.rdb{match[2]}.conv{match[3]}.{match[4]}"] = tensor
        elif trunk is not None and name in (f"model.1.sub.{trunk}.weight", f"model.1.sub.{trunk}.bias"):
            renamed[f"conv_body.{name.rsplit('.', 1)[1]}"] = tensor
        elif match := _OLD_TOP.fullmatch(name):
            tops.setdefault(int(match[1]), {})[match[2]] = tensor
        else:
            raise NotRRDBNet(f"it holds a tensor named {name!r}, which no ESRGAN network has")
    indices = sorted(tops)
    if len(indices) < 3 or indices[0] != 0:
        raise NotRRDBNet("its top-level convolutions are not those of an ESRGAN network")
    names = ["conv_first", *(f"ups.{k}" for k in range(len(indices) - 3)), "conv_hr", "conv_last"]
    for index, new in zip(indices, names, strict=True):
        for kind, tensor in tops[index].items():
            renamed[f"{new}.{kind}"] = tensor
    return renamed


def _shape(state: Mapping[str, torch.Tensor]) -> RRDBShape:
    try:
        first, last = state["conv_first.weight"], state["conv_last.weight"]
        growth = state["body.0.rdb1.conv1.weight"].shape[0]
    except KeyError as exc:
        raise NotRRDBNet(f"it has no {exc.args[0]} tensor") from None
    if first.ndim != 4 or last.ndim != 4:
        raise NotRRDBNet("its first and last layers are not convolutions")
    blocks = len({name.split(".")[1] for name in state if name.startswith("body.")})
    upsamples = len({name.split(".")[1] for name in state if name.startswith("ups.")})
    in_total = int(first.shape[1])
    unshuffle = next((u for u in (1, 2, 4) if in_total % (u * u) == 0 and in_total // (u * u) in (1, 3, 4)
                      and (u == 1 or in_total // (u * u) == last.shape[0])), None)
    if unshuffle is None:
        raise NotRRDBNet(f"its first layer takes {in_total} channels, not an image's")
    return RRDBShape(in_channels=in_total // unshuffle ** 2, out_channels=int(last.shape[0]),
                     features=int(first.shape[0]), growth=int(growth), blocks=blocks, upsamples=upsamples,
                     unshuffle=unshuffle)
