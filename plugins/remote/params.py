"""The remote generators' parameters: what is sent to the server, named as Studiolo's own generators name it.

* :class:`RemoteTextParams` — the text generators' shared fields (:class:`plugins.text.params.TextParamsBase`: the
  text panel works with it unchanged). ``top_k`` and ``repetition_penalty`` are not OpenAI fields: they default to
  "off" here and are sent (as ``top_k``, ``repetition_penalty`` and llama.cpp's ``repeat_penalty``) only when set.
* :class:`RemoteImageParams` — named as ``plugins.image.params.ImageParams`` names them, so that a Studiolo
  server's image generator takes them as its own (``negative_prompt``, ``steps``, ``guidance_scale``).
* :class:`RemoteAudioParams` — the text to read, a voice and a speed.

The seed is not a parameter: the host's (``ctx.seed``) is sent with every request.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop.api import param
from plugins.text.params import TextParamsBase

__all__ = ["RemoteTextParams", "RemoteImageParams", "RemoteAudioParams", "MAX_IMAGES"]

MAX_IMAGES = 10
"""The most images one remote job asks for (OpenAI's own limit for ``n``)."""


@dataclass(frozen=True)
class RemoteTextParams(TextParamsBase):
    """The shared text fields; top-k and the repetition penalty default to off (0 and 1): most OpenAI-compatible
    servers take them only as extensions, so they are sent only when set."""

    top_k: int = param(0, min=0, max=1000, label="Top-k",
                       help="Sample only from this many likeliest tokens (0: off, not sent). Not every server takes "
                            "it.")
    repetition_penalty: float = param(1.0, min=1.0, max=3.0, step=0.05,
                                      help="Above 1, discourage repeating what was already written (1: off, not "
                                           "sent). Not every server takes it.")


@dataclass(frozen=True)
class RemoteImageParams:
    """What a remote image job asks for (``POST /images/generations``, or a Studiolo server's job)."""

    prompt: str = param("", prompt=True, multiline=True, help="What to draw.")
    negative_prompt: str = param("", multiline=True,
                                 help="What to keep out of the picture (sent as an extra field: a Studiolo server "
                                      "uses it, others may ignore it).")
    width: int = param(512, min=64, max=4096, step=8, multiple_of=8, help="Width in pixels (a multiple of 8).")
    height: int = param(512, min=64, max=4096, step=8, multiple_of=8, help="Height in pixels (a multiple of 8).")
    steps: int = param(20, min=1, max=150, help="Denoising steps (an extra field, as negative_prompt).")
    guidance_scale: float = param(7.0, min=0.0, max=30.0, step=0.5,
                                  help="How closely to follow the prompt (Turbo models: 0; an extra field).")
    n: int = param(1, min=1, max=MAX_IMAGES, label="Images", help="How many images to make.")


@dataclass(frozen=True)
class RemoteAudioParams:
    """What a remote audio job asks for (``POST /audio/speech``)."""

    text: str = param("Hello! This is Studiolo, reading aloud on another computer.", prompt=True, multiline=True,
                      help="The text to read aloud (or, for a music model, the music to make).")
    voice: str = param("alloy", help="The voice, as the server names its voices (a Studiolo server ignores it "
                                     "unless its generator has voices).")
    speed: float = param(1.0, min=0.25, max=4.0, step=0.05, help="Faster above 1, slower below (1: not sent).")
