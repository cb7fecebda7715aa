"""``WatermarkCheck``: what a generator found when it looked for its own invisible watermark in a file."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WatermarkCheck"]


@dataclass(frozen=True)
class WatermarkCheck:
    """(API 0.2.3) The answer of :meth:`Generator.detect_watermark`.

    Attributes:
        method: the watermark looked for, in words a person can search (``"invisible-watermark dwtDct, 48 bits"``,
            ``"transformers WatermarkingConfig (lefthash)"``).
        detected: True when the mark is there (past the method's own threshold).
        score: how strongly, between 0 and 1 (the share of the mark's bits read back; 1 − the p-value of a
            statistical test) — enough for a person to judge a borderline case.
        detail: one short line: what was measured, or why the file could not be checked.
    """

    method: str
    detected: bool
    score: float
    detail: str = ""
