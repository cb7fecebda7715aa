"""The audio generators' parameters: one schema each for the CLI, the panel and the metadata."""

from __future__ import annotations

from dataclasses import dataclass

from desktop.api import param

SAMPLE_RATES = (0, 16000, 22050, 24000, 32000, 44100, 48000)
"""Output sample rates offered; 0 keeps the model's own."""


@dataclass(frozen=True)
class SpeechParams:
    text: str = param("Hello! This is Studiolo, reading aloud on your own computer.", prompt=True, multiline=True,
                      help="What to say. Long text is spoken sentence by sentence.")
    speaking_rate: float = param(1.0, min=0.25, max=4.0, step=0.05, help="Faster above 1, slower below.")
    noise_scale: float = param(0.667, min=0.0, max=2.0, step=0.01,
                               help="Variation in the voice (where the model supports it).")
    sample_rate: int = param(0, choices=SAMPLE_RATES, help="Resample the result to this rate (0: the model's own).")


@dataclass(frozen=True)
class MusicParams:
    prompt: str = param("", prompt=True, multiline=True, help="The music to make, e.g. 'calm piano with rain'.")
    duration: float = param(8.0, min=0.5, max=60.0, step=0.5, help="Length in seconds.")
    guidance_scale: float = param(3.0, min=0.0, max=10.0, step=0.5,
                                  help="How closely to follow the prompt (1 or less: no guidance).")
    sample_rate: int = param(0, choices=SAMPLE_RATES, help="Resample the result to this rate (0: the model's own).")
