"""Outpainting: extend a picture left, right, up and down, and paint the new area with one inpaint pass.

:func:`prepare_outpaint` turns an ``outpaint`` job into an inpaint job over a bigger canvas:

1. **Extents** — ``outpaint_left/right/top/bottom`` pixels (multiples of 8) are added around the init image, which
   keeps its own size (``width``/``height`` are not used). When the init image's width or height is not a multiple
   of 8, the right (bottom) extent grows by the few pixels that make the canvas one (diffusers works in 8-pixel
   latent cells). A canvas over :data:`MAX_SIDE` a side is refused before any work, naming the extent.
2. **Fill** — the new area starts as the init image's edge pixels stretched outward (``edge``) or as random
   pixels drawn from the job's seed (``noise``): the starting point the inpaint pass changes by ``strength``.
3. **Mask** (:func:`feather_mask`) — white over the new area, fading to black ``outpaint_feather`` pixels into the
   old area along each extended side (a Gaussian blur from Pillow), black elsewhere. The pipeline repaints where
   the mask is not black (:func:`repaint_mask`): the new area and the feather band, so the seam is repainted too.
4. **Compositing** (:meth:`Outpaint.finish`) — the generated canvas is laid over the original through the
   feathered mask. So the new area is the generated picture, and **the original area farther than
   ``outpaint_feather`` pixels from an extended side is the init image, pixel for pixel** (feather 0: the whole
   original area); inside the band the two are mixed by the mask (no tolerance to state: exact by construction,
   checked by ``tests/test_image_outpaint.py``).

Metadata: A1111 has no outpaint field; :func:`a1111_outpaint` writes one setting,
``Outpaint: "left=0, right=64, top=0, bottom=0, feather=16, fill=edge"``, that :func:`outpaint_values` reads back.

Pillow and numpy only (no torch): the pass itself is the generator's inpaint pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from desktop.api import ParamError
from plugins.image.params import OUTPAINT_FILLS as FILLS

__all__ = ["MAX_SIDE", "FILLS", "Extents", "Outpaint", "a1111_outpaint", "canvas_extents", "check_extents",
           "extend_canvas", "extents_of", "feather_mask", "outpaint_values", "prepare_outpaint", "repaint_mask"]

MAX_SIDE = 2048
"""The largest canvas side (the largest ``width``/``height`` the image generator makes)."""
LATENT_CELL = 8
"""Pixels per latent cell: the canvas's width and height are multiples of it."""


@dataclass(frozen=True)
class Extents:
    """Pixels added on each side of the init image."""

    left: int = 0
    top: int = 0
    right: int = 0
    bottom: int = 0

    def any(self) -> bool:
        """Whether any side is extended."""
        return any((self.left, self.top, self.right, self.bottom))


def canvas_extents(init_size: tuple[int, int], asked: Extents) -> tuple[Extents, tuple[int, int]]:
    """The extents used and the canvas size: ``asked``, with the right and bottom extents grown by what makes the
    canvas's width and height multiples of :data:`LATENT_CELL` (only when the init image's own are not)."""
    width, height = init_size
    extra_x = -(width + asked.left + asked.right) % LATENT_CELL
    extra_y = -(height + asked.top + asked.bottom) % LATENT_CELL
    used = replace(asked, right=asked.right + extra_x, bottom=asked.bottom + extra_y)
    return used, (width + used.left + used.right, height + used.top + used.bottom)


def extend_canvas(image: Any, extents: Extents, fill: str = "edge", seed: int = 0) -> Any:
    """``image`` (RGB) on a canvas bigger by ``extents``: the new area filled by ``fill`` (see :data:`FILLS`;
    ``noise`` is drawn from ``seed``), the original pasted unchanged at (``left``, ``top``)."""
    import numpy as np
    from PIL import Image

    pixels = np.asarray(image.convert("RGB"))
    pad = ((extents.top, extents.bottom), (extents.left, extents.right), (0, 0))
    if fill == "noise":
        canvas = np.random.default_rng(seed).integers(0, 256, (pixels.shape[0] + extents.top + extents.bottom,
                                                              pixels.shape[1] + extents.left + extents.right, 3),
                                                     dtype=np.uint8)
        canvas[extents.top:extents.top + pixels.shape[0], extents.left:extents.left + pixels.shape[1]] = pixels
    else:
        canvas = np.pad(pixels, pad, mode="edge")
    return Image.fromarray(canvas, "RGB")


def feather_mask(canvas_size: tuple[int, int], extents: Extents, feather: int) -> Any:
    """The compositing mask (L) of a canvas of ``canvas_size`` around an original placed by ``extents``: 255
    over the new area; along each extended side a fade from 255 at the edge to 0 ``feather`` pixels into the
    original (a Gaussian blur, standard deviation ``feather / 6``, centred ``feather / 2`` in); exactly 0 in the
    rest of the original area (its core)."""
    from PIL import Image, ImageFilter

    width, height = canvas_size
    box = (extents.left, extents.top, width - extents.right, height - extents.bottom)
    mask = Image.new("L", canvas_size, 255)
    if feather <= 0:
        mask.paste(0, box)
        return mask
    half = feather / 2
    hard = Image.new("L", canvas_size, 255)
    hard.paste(0, _inset(box, extents, half))
    soft = hard.filter(ImageFilter.GaussianBlur(feather / 6))
    mask.paste(soft.crop(box), box[:2])  # the new area stays exactly 255
    core = _inset(box, extents, feather)
    if core[0] < core[2] and core[1] < core[3]:
        mask.paste(0, core)  # and the core exactly 0
    return mask


def _inset(box: tuple[int, int, int, int], extents: Extents, by: float) -> tuple[int, int, int, int]:
    """``box`` moved ``by`` pixels inward on each extended side (rounded up)."""
    step = int(-(-by // 1))
    left, top, right, bottom = box
    return (left + step * bool(extents.left), top + step * bool(extents.top),
            right - step * bool(extents.right), bottom - step * bool(extents.bottom))


def repaint_mask(mask: Any) -> Any:
    """The inpaint pipeline's mask (L): white wherever the compositing ``mask`` is not black."""
    return mask.point(lambda value: 255 if value else 0)


@dataclass(frozen=True)
class Outpaint:
    """An outpaint job made ready: ``params`` with the canvas size as ``width``/``height``, the pipeline's
    ``inputs`` (the filled canvas and the repaint mask), and what :meth:`finish` lays the result over."""

    params: Any
    inputs: dict[str, Any]
    original: Any
    mask: Any
    extents: Extents

    @property
    def size(self) -> tuple[int, int]:
        """The canvas's (width, height)."""
        return self.original.size

    def finish(self, generated: Any) -> Any:
        """``generated`` (the pipeline's canvas) laid over the original through the feathered mask."""
        from PIL import Image

        if generated.size != self.size:  # the pipeline makes the size asked; this is a safety net
            generated = generated.resize(self.size, Image.Resampling.LANCZOS)
        return Image.composite(generated.convert("RGB"), self.original, self.mask)


def extents_of(params: Any) -> Extents:
    """The extents ``params`` ask for."""
    return Extents(params.outpaint_left, params.outpaint_top, params.outpaint_right, params.outpaint_bottom)


def check_extents(params: Any) -> Extents:
    """The extents asked for; :class:`ParamError` when no side is extended (before any image is read)."""
    asked = extents_of(params)
    if not asked.any():
        raise ParamError("outpaint_right", 0, "outpaint needs at least one side extended",
                         hint="Set outpaint_left, outpaint_right, outpaint_top or outpaint_bottom above 0.")
    return asked


def prepare_outpaint(params: Any, init: Any, *, seed: int) -> Outpaint:
    """The inpaint job for an outpaint ``params`` whose init image (opened, RGB, its own size) is ``init``.

    :class:`ParamError` before any work: no side extended, or a canvas over :data:`MAX_SIDE` a side (naming the
    extent, with the size it would be).
    """
    asked = check_extents(params)
    extents, (width, height) = canvas_extents(init.size, asked)
    for side, fields in ((width, ("outpaint_right", "outpaint_left")), (height, ("outpaint_bottom", "outpaint_top"))):
        if side > MAX_SIDE:
            field = next((name for name in fields if getattr(params, name)), fields[0])
            raise ParamError(field, getattr(params, field),
                             f"the picture would be {width}×{height} pixels, over {MAX_SIDE} a side",
                             hint=f"Extend less, or start from a smaller picture (it is {init.size[0]}×"
                                  f"{init.size[1]}).")
    original = extend_canvas(init, extents, "edge")
    start = original if params.outpaint_fill == "edge" else extend_canvas(init, extents, "noise", seed)
    mask = feather_mask((width, height), extents, params.outpaint_feather)
    return Outpaint(params=replace(params, width=width, height=height),
                    inputs={"image": start, "mask_image": repaint_mask(mask)},
                    original=original, mask=mask, extents=extents)


# ---------------------------------------------------------------------------------------------- metadata

_A1111_KEYS = (("left", "outpaint_left"), ("right", "outpaint_right"), ("top", "outpaint_top"),
               ("bottom", "outpaint_bottom"), ("feather", "outpaint_feather"), ("fill", "outpaint_fill"))


def a1111_outpaint(params: Any) -> str | None:
    """The value of the ``Outpaint`` setting in A1111's ``parameters`` text (None unless mode is outpaint)."""
    if getattr(params, "mode", None) != "outpaint":
        return None
    return ", ".join(f"{key}={getattr(params, name)}" for key, name in _A1111_KEYS)


def outpaint_values(text: str) -> dict[str, str]:
    """Params values (``mode`` and the ``outpaint_*`` fields, as text) from an ``Outpaint`` setting's value; keys
    it does not know are ignored, values are checked by the caller (``fit_params``)."""
    names = dict(_A1111_KEYS)
    values = {"mode": "outpaint"}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip() in names:
            values[names[key.strip()]] = value.strip()
    return values
