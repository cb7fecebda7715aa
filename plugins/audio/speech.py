"""``audio.speech``: text to speech with VITS models through transformers (the MMS-TTS family: one language each).

* **load** takes a transformers VITS folder (a ``save_pretrained`` folder or a downloaded hub repo): the
  ``VitsTokenizer`` and ``VitsModel``, offline, safetensors only unless pickle weights were allowed. A folder
  without a tokenizer, of another kind of model, or with damaged weights is refused, naming the problem.
* **generate** splits the text into sentences (:mod:`plugins.audio.sentences`) and speaks them one by one: each
  sentence's audio goes to ``ctx.preview`` as soon as it is ready and counts one step of progress; the result is the
  sentences' audio end to end. A cancel lands between sentences and keeps the clip so far. Text the voice cannot
  read (another alphabet, only symbols) is an error naming the characters, never silence.

Reproducibility: VITS draws its noise from torch's global random generator (``randn_like``), so each sentence is
synthesised inside ``ctx.hold_global_rng()`` — reseeded with the job's seed — which makes every sentence exactly
what ``torch.manual_seed(seed); model(**inputs)`` gives, whatever other jobs run at the same time.

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
from plugins.audio.params import SpeechParams
from plugins.audio.resample import resample
from plugins.audio.sentences import split_sentences

__all__ = ["VitsSpeechGenerator", "SpeechModel", "load_speech_model", "unreadable_characters"]

"""Files of which a model folder needs at least one: without them its text cannot be tokenized."""
_MB = 1_000_000
_MMS = "Meta's MMS text-to-speech voice for {}: one speaker, reads plain {} text; small and fast on any CPU."


@dataclass
class SpeechModel:
    """The handle ``load`` returns: the VITS model, its tokenizer, where they run and the model's sample rate."""

    model: Any
    tokenizer: Any
    device: str
    sample_rate: int
    source: Path

    def size_bytes(self) -> int:
        """Bytes held by the model's parameters."""
        return sum(p.numel() * p.element_size() for p in self.model.parameters())


class VitsSpeechGenerator(AudioGenerator):
    """Text to speech with VITS (MMS-TTS) models."""

    id = "audio.speech"
    name = "Speech (VITS)"
    kind = "audio"
    version = "0.1.0"
    description = "Read text aloud with a text-to-speech voice running on this computer."
    Params = SpeechParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "transformers")
    # Sizes: the float32 safetensors weights (~36 M parameters each), written by hand; approximate.
    recommended_models = tuple(
        RecommendedModel(f"facebook/mms-tts-{code}", f"MMS-TTS {language}", _MMS.format(language, language),
                         size_bytes=145 * _MB, size_checked="2026-11", license="CC-BY-NC-4.0")
        for code, language in (("eng", "English"), ("deu", "German"), ("fra", "French"), ("spa", "Spanish"))
    )

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """A tiny VITS with random weights (0.7 MB, a second, offline): it speaks noise."""
        from plugins.audio.demo import build_tiny_vits

        build_tiny_vits(dest)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> SpeechModel:
        """Load a VITS model folder onto ``device`` (see :func:`load_speech_model`)."""
        if model_path is None:
            raise ModelNotFoundError("No model was given.", hint="Choose a text-to-speech voice, or 'demo'.")
        return load_speech_model(Path(model_path), device, options)

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: SpeechModel, params: SpeechParams, ctx: RunContext) -> list[AudioOutput]:
        """Speak ``params.text`` sentence by sentence; see the module docstring."""
        import numpy as np
        import torch

        sentences = _encode_sentences(handle, params.text, ctx)
        rate = params.sample_rate or handle.sample_rate
        pieces: list[Any] = []

        def clip(partial: bool) -> AudioOutput:
            samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            return AudioOutput(samples=samples, sample_rate=rate, partial=partial,
                               metadata={"sentences": len(pieces), "model_sample_rate": handle.sample_rate,
                                         "seed": ctx.seed})

        model = handle.model
        for index, inputs in enumerate(sentences):
            if ctx.cancelled:
                raise JobCancelled(partial=[clip(True)] if pieces else [])
            with ctx.hold_global_rng(), torch.no_grad():
                model.speaking_rate = params.speaking_rate
                model.noise_scale = params.noise_scale
                waveform = model(**inputs).waveform
            samples = np.clip(waveform[0].float().cpu().numpy(), -1.0, 1.0).astype(np.float32, copy=False)
            piece = resample(samples, handle.sample_rate, rate)
            pieces.append(piece)
            ctx.preview(AudioOutput(samples=piece, sample_rate=rate))
            ctx.progress(index + 1, len(sentences), f"sentence {index + 1} of {len(sentences)}")
        return [clip(False)]


def _encode_sentences(handle: SpeechModel, text: str, ctx: RunContext) -> list[dict[str, Any]]:
    """The tokenized sentences of ``text`` (on the model's device), leaving out those the voice cannot read with a
    warning naming their characters; :class:`ParamError` when there is nothing it can read."""
    if not text.strip():
        raise ParamError("text", text, "there is nothing to say", hint="Type the text to speak.")
    tokenizer = handle.tokenizer
    encoded: list[dict[str, Any]] = []
    for sentence in split_sentences(text):
        inputs = tokenizer(sentence, return_tensors="pt")
        if inputs["input_ids"].shape[-1] > 0:
            encoded.append({k: v.to(handle.model.device) for k, v in inputs.items()})
    unknown = unreadable_characters(tokenizer, text)
    if not encoded:
        shown = " ".join(unknown[:20]) + (" …" if len(unknown) > 20 else "")
        raise ParamError("text", text, f"this voice cannot read any of its characters ({shown or 'none'})",
                         hint="Write the text in the voice's own language and alphabet, or choose a voice (model) "
                              "made for this language.")
    letters = [ch for ch in unknown if ch.isalnum()]
    if letters:  # punctuation is dropped by design; letters and digits that vanish are worth a word
        ctx.warn("This voice cannot read these characters, so they were left out: " + " ".join(letters[:20]) +
                 ". Choose a voice for this language, or spell them out.")
    return encoded


def unreadable_characters(tokenizer: Any, text: str) -> list[str]:
    """The characters of ``text`` (not whitespace) that are not in the tokenizer's vocabulary, even lower-cased, in
    order of first appearance."""
    vocab = tokenizer.get_vocab()
    return [ch for ch in dict.fromkeys(text) if not ch.isspace() and ch not in vocab and ch.lower() not in vocab]


# ---------------------------------------------------------------------------------------------- loading


def load_speech_model(path: Path, device: str, options: LoadOptions) -> SpeechModel:
    """Load the VITS folder ``path`` onto ``device``: tokenizer and model, offline."""
    allow_pickle = bool(getattr(options, "allow_pickle", False))
    check_model_folder(path, "text-to-speech voice", ("vits",), allow_pickle)
    from transformers import AutoTokenizer, VitsModel

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise ModelFormatError(f"The tokenizer of {path.name} could not be loaded: {first_line(exc)}",
                               hint="Download the model again, or copy its tokenizer files into the folder.") from exc
    model = load_pretrained(VitsModel, path, allow_pickle)
    model.to(device).eval()
    return SpeechModel(model=model, tokenizer=tokenizer, device=device, source=path,
                       sample_rate=int(model.config.sampling_rate))
