"""What the marks cost, as measured (benchmarks/provenance_cost.py; the numbers and the machine in
docs/provenance.md), in the words the Settings dialog shows. Tests check the image PSNR stated here against the
image generator's own measurement (plugins/image/watermark.py ``MEASURED_PSNR_DB``)."""

from __future__ import annotations

IMAGE_WATERMARK_PSNR_DB = 39.6
"""The PSNR of a marked 512×512 picture against the unmarked one (dB): how little the mark changes the pixels."""

SIGNING_COST = "Signing adds about 6–10 ms and 4 KB to each file."
"""Signing's cost per output, in words (measured on a 512×512 PNG, CPU)."""

WATERMARK_COST = (
    f"Images: a pattern in the picture's frequencies (PSNR {IMAGE_WATERMARK_PSNR_DB:.0f} dB: not visible), kept "
    "through a JPEG re-encode (quality 75 and up), lost to most crops and resizes. Text: a statistical preference "
    "for some words over others, found again in a few hundred tokens with the model's tokenizer; a paraphrase "
    "removes it. Neither proves who made a file; Content Credentials say that, until the metadata is stripped."
)
"""What the invisible watermarks cost and survive, in words."""
