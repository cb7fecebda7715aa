"""The image generator's optional invisible watermark (Settings → Provenance; off by default).

When :attr:`RunContext.watermark` is on, each finished picture (not the previews, not ControlNet maps) gets a
48-bit message of Studiolo's own — :data:`MESSAGE`, the bytes ``Stdlo1``, 24 ones and 24 zeros, so that a flat
picture (which reads back as all zeros) scores one half — with the ``dwtDct`` method of ``invisible-watermark``
(the method the SDXL reference code and diffusers' ``StableDiffusionXLWatermarker`` use, but not Stability's bits,
and not its channel — see below): one Haar wavelet level of the Y (luma) channel, each 4×4 block of its
approximation band carrying one bit in its largest coefficient, the 48 bits repeated over the whole picture.
:func:`read` takes the bits back (a majority over every block of each bit) and scores the share that match the
message. Pictures of fewer than 256×256 pixels (:data:`MIN_PIXELS`; invisible-watermark refuses them, SDXL's
watermarker skips pictures narrower than 256) are left unmarked.

Why luma (:data:`SCALES` ``[24, 0, 0]``: Y at strength 24) and not SDXL's chroma (the library's default
``[0, 36, 36]``: U at strength 36; the library reads only Y and U): JPEG as Pillow (and most software) saves it
subsamples the chroma 4:2:0, halving U and V in each direction, and that erased a chroma mark. Measured the same way
as below, the chroma mark was detected after a default JPEG at quality 90 in 1 of 30 pictures (median score 0.63),
after 4:4:4 JPEG in 29 of 30, untouched in 30 of 30, at PSNR 38.3 dB for the fixed picture (30 pictures: 37.1–40.2,
median 38.2). The luma mark changes the pixels less (PSNR 39.6 dB) and survives the default JPEG (below).

Measured (numpy 2.4.6, OpenCV 5.1.0, PyWavelets 1.9.0, invisible-watermark 0.2.0, Pillow 13.0.0; the pictures
are smooth synthetic ones — gradients, soft colour blobs, fine blurred grain — built as
``tests/test_image_watermark.py``'s ``natural()`` builds them: 30 of them, ``natural(size, seed=i)`` for
``i`` in 0–29 with ``size`` cycling 256, 384, 512, 640, 768):

* Quality: the fixed 512×512 test picture (``natural(512, seed=0)``), marked, against the original: PSNR
  :data:`MEASURED_PSNR_DB` dB (the 30 pictures: 37.7–41.1 dB, median 39.6).
* False positives: 60 unmarked pictures (10 each of flat colours, gradients, blurred noise, white noise, the
  smooth pictures, and JPEG-compressed smooth pictures and noise at quality 75 or 90; 256–768 px, seeded) scored at
  most :data:`MEASURED_UNMARKED_MAX` (30 of 48 bits), mean 0.51. :data:`THRESHOLD` is 36 of 48 bits: by chance
  alone (48 fair coins) a picture reaches it with P ≈ 3.6·10⁻⁴.
* Read back untouched: all 30 detected (median score 1.00, lowest 0.92). Lossless WebP/PNG: unchanged.
* JPEG quality 90 as Pillow saves it by default (4:2:0 chroma subsampling): detected in 30 of 30 (median 1.00,
  lowest 0.94); with 4:4:4 the same. JPEG quality 75 (either subsampling): detected in 30 of 30 (lowest 0.92).
* A 10 % crop: NOT detected (0 of 24, max 0.65), both 5 % off each side and 10 % off the right and bottom (one
  corner, the top-left origin kept): the bits are laid in blocks counted along each row, so a new width or origin
  scrambles them; cutting 10 % of rows off the bottom alone keeps the mark (24 of 24). (The 6 pictures of 256 px
  are too small to read once cropped or shrunk, so 24.)
* Resize to 75 %: NOT detected (0 of 24, max 0.58). Down to 50 % and back up to the original size (Lanczos):
  detected in 30 of 30.

dwtDct is a light mark for honest provenance (it says "made with Studiolo" while the file is passed around as is),
not a defence against someone who wants it gone.

``invisible-watermark`` imports torch (its rivaGan module), OpenCV and PyWavelets: it is imported only inside
:func:`mark` and :func:`read`, which run in the generator's worker process (or the CLI's verify); importing this
module imports none of them.
"""

from __future__ import annotations

from typing import Any

from desktop.api import WatermarkCheck

__all__ = ["BITS", "MEASURED_PSNR_DB", "MESSAGE", "METHOD", "SCALES", "THRESHOLD", "can_mark", "detect_file", "mark",
           "mark_output", "psnr", "read", "record"]

METHOD = "dwtDct"
"""invisible-watermark's method name (``WatermarkEncoder.encode(..., method=METHOD)``)."""
SCALES = [24, 0, 0]
"""dwtDct's strength per YUV channel (``scales=`` to both the encoder and the decoder, which must agree): the Y (luma)
channel at 24, not the library's (and SDXL's) chroma ``[0, 36, 36]``, which JPEG's 4:2:0 subsampling erases (see
the module docstring)."""
MESSAGE = b"Stdlo1"
"""Studiolo's 48-bit message (hex ``5374646c6f31``): 24 ones, 24 zeros."""
BITS = len(MESSAGE) * 8
DESCRIPTION = f"invisible-watermark {METHOD}, {BITS} bits"
"""How :class:`WatermarkCheck.method` names it."""
MIN_PIXELS = 256 * 256
"""invisible-watermark refuses pictures of fewer pixels (width × height) than this; they are left unmarked."""
THRESHOLD = 36 / 48
"""The share of the 48 bits that must match for ``detected`` (0.75; unmarked pictures: at most
:data:`MEASURED_UNMARKED_MAX`)."""
MEASURED_PSNR_DB = 39.6
"""PSNR (dB) of a marked smooth 512×512 picture against the original (see the module docstring)."""
MEASURED_UNMARKED_MAX = 0.625
"""The highest score of 60 unmarked pictures (see the module docstring)."""


def can_mark(size: tuple[int, int]) -> bool:
    """Whether a picture of ``size`` (width, height) is big enough for the mark."""
    return size[0] * size[1] >= MIN_PIXELS


def record() -> dict[str, Any]:
    """The output metadata's ``watermark`` entry: how the picture was marked."""
    return {"method": METHOD, "bits": BITS, "message": MESSAGE.hex(), "scales": list(SCALES)}


def mark(image: Any) -> Any:
    """``image`` (PIL) with the mark, as an RGB picture of the same size; a picture too small for it
    (:func:`can_mark`) comes back as it is (the caller says so)."""
    if not can_mark(image.size):
        return image
    import numpy as np
    from imwatermark import WatermarkEncoder  # imports torch (rivaGan): worker side only
    from PIL import Image

    encoder = WatermarkEncoder()
    encoder.set_watermark("bytes", MESSAGE)
    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    marked = encoder.encode(bgr, METHOD, scales=list(SCALES))
    return Image.fromarray(np.ascontiguousarray(marked[:, :, ::-1]), "RGB")


def read(image: Any) -> WatermarkCheck:
    """Look for Studiolo's mark in ``image`` (PIL): ``score`` is the share of the 48 bits read back as written,
    ``detected`` is ``score >= THRESHOLD``."""
    if not can_mark(image.size):
        return WatermarkCheck(DESCRIPTION, False, 0.0,
                              f"{image.width}×{image.height} is too small to carry the mark "
                              f"(it needs {MIN_PIXELS:,} pixels)")
    import numpy as np
    from imwatermark import WatermarkDecoder  # imports torch (rivaGan): worker side / verify only

    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
    bits = np.asarray(WatermarkDecoder("bits", BITS).decode(bgr, METHOD, scales=list(SCALES)), dtype=bool)
    expected = np.unpackbits(np.frombuffer(MESSAGE, dtype=np.uint8)).astype(bool)
    matched = int((bits == expected).sum())
    score = matched / BITS
    detected = score >= THRESHOLD
    return WatermarkCheck(DESCRIPTION, detected, score,
                          f"{matched} of {BITS} bits match Studiolo's mark (needs {round(THRESHOLD * BITS)})")


def psnr(a: Any, b: Any) -> float:
    """Peak signal-to-noise ratio (dB, 8-bit RGB) between two PIL pictures of the same size; inf when equal."""
    import numpy as np

    if a.size != b.size:
        raise ValueError(f"the pictures differ in size: {a.size} and {b.size}")
    x = np.asarray(a.convert("RGB"), dtype=np.float64)
    y = np.asarray(b.convert("RGB"), dtype=np.float64)
    mse = float(((x - y) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(255.0**2 / mse))


def mark_output(image: Any, metadata: dict[str, Any], ctx: Any, *, first: bool = True) -> Any:
    """For the generator: ``image`` marked and ``metadata["watermark"]`` recorded when ``ctx.watermark`` is on
    (else both as they are). A picture too small is left unmarked and records nothing; the user is told on the
    job's ``first`` output (a job's pictures share one size)."""
    if not getattr(ctx, "watermark", False):
        return image
    if not can_mark(image.size):
        if first:
            ctx.warn(f"Invisible watermark: {image.width}×{image.height} pictures are too small to carry it "
                     f"(it needs at least {MIN_PIXELS:,} pixels, e.g. 256×256); they were saved without it.")
        return image
    marked = mark(image)
    metadata["watermark"] = record()
    return marked


def detect_file(path: Any) -> WatermarkCheck:
    """:func:`read` on the picture in the file at ``path`` (any format Pillow reads: PNG, JPEG, WebP…). Never
    raises: a file that is missing, not a picture, or a reader that is not installed gives ``detected=False`` and
    the reason in ``detail``."""
    from pathlib import Path

    from PIL import Image

    try:
        with Image.open(Path(path)) as opened:
            image = opened.convert("RGB")
    except FileNotFoundError:
        return WatermarkCheck(DESCRIPTION, False, 0.0, f"no such file: {path}")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return WatermarkCheck(DESCRIPTION, False, 0.0, f"not a picture Pillow can read: {exc}")
    try:
        return read(image)
    except ImportError as exc:
        return WatermarkCheck(DESCRIPTION, False, 0.0,
                              f"cannot look: {exc.name or exc} is not installed (pip install --no-deps "
                              f"invisible-watermark==0.2.0 PyWavelets)")
    except Exception as exc:  # the contract: never raise for a bad file
        return WatermarkCheck(DESCRIPTION, False, 0.0, f"could not read the mark: {type(exc).__name__}: {exc}")
