"""What a generator makes.

``Generator.generate`` returns a list of outputs. Each carries ``metadata`` (anything JSON-ready the plugin wants
recorded beside the host's own: generator, model, params, seed, timings) and ``partial`` (true for what a
cancelled job made before it stopped; the host delivers a partial output once and labels it). ``saved_path`` is
set by the host once it saved the output (API 0.2.1): a panel uses that file, which is in the library, as the
input of a next job ("use as input"), so that the chain links to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for type checkers only: the API module stays free of heavy imports
    import numpy as np
    from PIL import Image

__all__ = ["Output", "ImageOutput", "TextOutput", "AudioOutput", "EncodedOutput"]


@dataclass(kw_only=True)
class Output:
    """Base of every output. ``saved_path``: the file the host saved it as (None until saved, or when not saved)."""

    metadata: dict[str, Any] = field(default_factory=dict)
    partial: bool = False
    saved_path: Path | None = None


@dataclass(kw_only=True)
class ImageOutput(Output):
    """An image (a PIL image, any mode PIL can save as PNG)."""

    image: Image.Image


@dataclass(kw_only=True)
class TextOutput(Output):
    """Text."""

    text: str


@dataclass(kw_only=True)
class AudioOutput(Output):
    """Audio: float samples in [-1, 1], shape ``(frames,)`` or ``(frames, channels)``, and the sample rate in Hz.

    Also the type of an audio *preview* chunk passed to ``ctx.preview``.
    """

    samples: np.ndarray
    sample_rate: int

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.samples) / float(self.sample_rate)


@dataclass(frozen=True)
class EncodedOutput:
    """An output encoded as a file's bytes, ready for the host to write atomically.

    ``suffix`` is the file extension with its dot (``".png"``). ``embeds_metadata`` says whether the bytes carry
    the metadata themselves (PNG text chunks, a WAV chunk, FLAC comments); when false the host writes a ``.json``
    sidecar next to the file, before it. Either way the full metadata is also kept in the library's index.
    ``Generator.encode_output`` returns one; the host's own writer makes one for every output it encodes (see
    "Saving outputs" in docs/plugins.md).
    """

    data: bytes
    suffix: str
    embeds_metadata: bool = True
