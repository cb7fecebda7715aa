"""``audio.music``: music from a text prompt with MusicGen through transformers.

* **load** takes a transformers MusicGen folder (``save_pretrained`` or a downloaded hub repo): the tokenizer and
  ``MusicgenForConditionalGeneration``, offline, safetensors only unless pickle weights were allowed.
* **generate** turns the duration into audio-codec frames (the codec's frame rate) and the frames into new tokens:
  MusicGen offsets codebook *k* by *k* steps (the "delay pattern"), so N new tokens make N − (K − 1) frames for K
  codebooks, and asking for frames + K − 1 tokens gives a clip within one frame of the duration. A duration past
  the decoder's position limit is refused. ``guidance_scale`` above 1 uses classifier-free guidance (twice the
  work); 1 or less turns it off. Progress is reported every :data:`PROGRESS_BLOCK` tokens; a cancel stops
  generation at the next token and the frames made so far are decoded into a partial clip.

Reproducibility: transformers samples from torch's global random generator, so generation runs inside
``ctx.hold_global_rng()``: the clip is exactly what ``torch.manual_seed(seed); model.generate(...)`` gives.

torch and transformers are imported only inside the methods the worker thread calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import (
    AudioOutput,
    JobCancelled,
    LoadOptions,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
    RecommendedModel,
    RunContext,
)
from plugins.audio.base import AudioGenerator
from plugins.audio.loading import check_model_folder, first_line, load_pretrained
from plugins.audio.params import MusicParams
from plugins.audio.resample import resample

__all__ = ["MusicGenGenerator", "MusicModel", "load_music_model", "decode_tokens", "PROGRESS_BLOCK"]

PROGRESS_BLOCK = 10
"""Tokens between two progress reports."""
_MB = 1_000_000


@dataclass
class MusicModel:
    """The handle ``load`` returns: the model, its tokenizer and the numbers that turn seconds into tokens."""

    model: Any
    tokenizer: Any
    device: str
    source: Path
    sample_rate: int
    frame_rate: float
    codebooks: int
    """Codebooks per audio channel (K): the delay pattern's depth."""
    channels: int
    max_positions: int
    """How many decoder positions the model reads: the start token plus the new tokens must fit."""

    def size_bytes(self) -> int:
        """Bytes held by the model's parameters."""
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def frames_for(self, duration: float) -> int:
        """Codec frames for ``duration`` seconds (at least one)."""
        return max(1, round(duration * self.frame_rate))

    def tokens_for(self, frames: int) -> int:
        """New tokens that give ``frames`` frames: the delay pattern costs K − 1 more."""
        return frames + self.codebooks - 1

    @property
    def max_duration(self) -> float:
        """The longest clip the decoder's positions allow, in seconds."""
        return (self.max_positions - 1 - (self.codebooks - 1)) / self.frame_rate


class MusicGenGenerator(AudioGenerator):
    """Music from text with MusicGen."""

    id = "audio.music"
    name = "Music (MusicGen)"
    kind = "audio"
    version = "0.1.0"
    description = "Make a short piece of music from a description, on this computer."
    Params = MusicParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "transformers")
    # Size: the float32 safetensors weights (~590 M parameters with the T5 encoder), written by hand; approximate.
    recommended_models = (
        RecommendedModel("facebook/musicgen-small", "MusicGen small",
                         "Instrumental music from a description, up to about 30 seconds; slow on a CPU, quick on a "
                         "GPU.", size_bytes=2_360 * _MB, size_checked="2026-11", license="CC-BY-NC-4.0"),
    )

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """A tiny MusicGen with random weights and 3 codebooks (1 MB, a second, offline): it makes noise."""
        from plugins.audio.demo import build_tiny_musicgen

        build_tiny_musicgen(dest)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> MusicModel:
        """Load a MusicGen folder onto ``device`` (see :func:`load_music_model`)."""
        if model_path is None:
            raise ModelNotFoundError("No model was given.", hint="Choose a MusicGen model, or 'demo'.")
        return load_music_model(Path(model_path), device, options)

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: MusicModel, params: MusicParams, ctx: RunContext) -> list[AudioOutput]:
        """Make ``params.duration`` seconds of music; see the module docstring."""
        import torch
        from transformers import StoppingCriteriaList

        if params.duration > handle.max_duration + 1e-9:
            raise ParamError("duration", params.duration,
                             f"this model makes at most {handle.max_duration:.1f} seconds at a time",
                             hint="Ask for a shorter clip.")
        frames = handle.frames_for(params.duration)
        tokens = handle.tokens_for(frames)
        rate = params.sample_rate or handle.sample_rate
        encoded = handle.tokenizer([params.prompt], return_tensors="pt", padding=True)
        inputs = {k: encoded[k].to(handle.model.device) for k in ("input_ids", "attention_mask") if k in encoded}
        watch = _TokenWatch(tokens, report=lambda done: ctx.progress(done, tokens), cancelled=lambda: ctx.cancelled)
        ctx.raise_if_cancelled()
        try:
            with ctx.hold_global_rng(), torch.no_grad():
                audio = handle.model.generate(**inputs, max_new_tokens=tokens,
                                              guidance_scale=float(params.guidance_scale),
                                              stopping_criteria=StoppingCriteriaList([watch]))
        except _Stopped as stop:
            made = 0 if stop.ids is None else stop.ids.shape[-1] - handle.codebooks
            if made <= 0:
                raise JobCancelled() from None
            with torch.no_grad():
                partial = decode_tokens(handle, stop.ids)
            raise JobCancelled(partial=[_output(handle, partial, rate, made, ctx.seed, partial=True)]) from None
        return [_output(handle, audio, rate, frames, ctx.seed)]


def _output(handle: MusicModel, audio: Any, rate: int, frames: int, seed: int, partial: bool = False) -> AudioOutput:
    """An :class:`AudioOutput` from ``generate``'s ``(1, channels, samples)`` tensor, resampled to ``rate``."""
    import numpy as np

    values = audio[0].float().cpu().numpy()
    samples = values[0] if values.shape[0] == 1 else values.T
    samples = resample(np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False), handle.sample_rate, rate)
    return AudioOutput(samples=samples, sample_rate=rate, partial=partial,
                       metadata={"frames": frames, "model_sample_rate": handle.sample_rate,
                                 "codebooks": handle.codebooks, "seed": seed})


class _Stopped(Exception):
    """Raised from inside ``generate`` to stop it on a cancel, carrying the token ids made so far."""

    def __init__(self, ids: Any) -> None:
        super().__init__("cancelled")
        self.ids = ids


class _TokenWatch:
    """A stopping criterion (called once per new token) that reports progress every :data:`PROGRESS_BLOCK`
    tokens and at the last, and on a cancel stops generation at once by raising :class:`_Stopped` (which skips
    transformers' decoding of an incomplete delay pattern)."""

    def __init__(self, total: int, report: Any, cancelled: Any) -> None:
        self.total = total
        self.report = report
        self.cancelled = cancelled
        self.done = 0

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.done += 1
        if self.cancelled():
            raise _Stopped(input_ids.detach().clone())
        if self.done % PROGRESS_BLOCK == 0 or self.done == self.total:
            self.report(self.done)
            if self.cancelled() and self.done < self.total:
                raise _Stopped(input_ids.detach().clone())
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


def decode_tokens(handle: MusicModel, ids: Any) -> Any:
    """Decode the decoder's token ids ``(codebooks × channels, length)`` (start token first, delay pattern as
    generated) into audio ``(1, channels, samples)``, keeping only complete frames: length − K of them."""
    import torch

    k, channels = handle.codebooks, handle.channels
    frames = ids.shape[-1] - k
    if frames <= 0:
        raise ValueError(f"{ids.shape[-1] - 1} tokens make no complete frame with {k} codebooks")
    rows = [ids[row, row // channels + 1: row // channels + 1 + frames] for row in range(k * channels)]
    codes = torch.stack(rows)[None, None]  # (frames-chunks 1, batch 1, codebooks, frames)
    codec = handle.model.audio_encoder
    if channels == 1:
        return codec.decode(codes, [None]).audio_values
    left = codec.decode(codes[:, :, ::2], [None]).audio_values
    right = codec.decode(codes[:, :, 1::2], [None]).audio_values
    return torch.cat([left, right], dim=1)


# ---------------------------------------------------------------------------------------------- loading


def load_music_model(path: Path, device: str, options: LoadOptions) -> MusicModel:
    """Load the MusicGen folder ``path`` onto ``device``: tokenizer and model, offline."""
    allow_pickle = bool(getattr(options, "allow_pickle", False))
    check_model_folder(path, "MusicGen model", ("musicgen",), allow_pickle)
    from transformers import AutoTokenizer, MusicgenForConditionalGeneration

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelFormatError(f"The tokenizer of {path.name} could not be loaded: {first_line(exc)}",
                               hint="Download the model again, or copy its tokenizer files into the folder.") from exc
    model = load_pretrained(MusicgenForConditionalGeneration, path, allow_pickle)
    model.to(device).eval()
    config = model.config
    channels = int(getattr(config.decoder, "audio_channels", 1) or 1)
    audio = config.audio_encoder
    frame_rate = getattr(audio, "frame_rate", None) or audio.sampling_rate / _prod(audio.upsampling_ratios)
    return MusicModel(model=model, tokenizer=tokenizer, device=device, source=path,
                      sample_rate=int(audio.sampling_rate), frame_rate=float(frame_rate),
                      codebooks=int(config.decoder.num_codebooks) // channels, channels=channels,
                      max_positions=int(config.decoder.max_position_embeddings))


def _prod(values: Any) -> int:
    out = 1
    for value in values:
        out *= int(value)
    return out
