"""Tiny audio models with random weights, built offline in about a second: the audio generators' demo models.

* :func:`build_tiny_vits` — a VITS text-to-speech model (hidden size 32, 2 layers, upsampling 8·8·4 to 16 kHz)
  with a ``VitsTokenizer`` over lower-case letters, digits, space and a little punctuation (no phonemizer). 0.7 MB.
* :func:`build_tiny_musicgen` — a MusicGen: a 2-layer T5 text encoder with a byte-level tokenizer (any text
  encodes), a 16 kHz Encodec with **3 codebooks** at 50 frames a second, and a 2-layer decoder reading up to
  :data:`MUSICGEN_MAX_POSITIONS` positions (about 10 s of audio). 1 MB.

Both save with ``save_pretrained`` (safetensors) and load through the same code as downloaded models. The weights
are drawn from a private ``torch.Generator`` seeded with ``seed``: the same seed gives the same files, and building
never touches torch's process-wide random generator (another job may be holding it). Random weights make noise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_vits", "build_tiny_musicgen", "VITS_CHARACTERS", "MUSICGEN_MAX_POSITIONS"]

VITS_CHARACTERS = "_ abcdefghijklmnopqrstuvwxyz0123456789'-.,!?"
"""The demo voice's vocabulary, one character a token; ``_`` (id 0) is the blank VITS puts between characters."""
MUSICGEN_MAX_POSITIONS = 512
"""The demo MusicGen decoder's position limit: (512 − 1 − 2) / 50 = 10.18 s of audio, so the default duration
(8 s) runs on the demo. Tests build theirs with 128 positions (2.5 s) to stay fast."""


def build_tiny_vits(dest: Path, *, seed: int = 0) -> Path:
    """Write the tiny VITS folder into ``dest`` (created if needed) and return it."""
    import torch
    from transformers import VitsConfig, VitsModel, VitsTokenizer

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    vocab = {ch: i for i, ch in enumerate(VITS_CHARACTERS)}
    vocab_file = dest / "vocab.json"
    vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    tokenizer = VitsTokenizer(str(vocab_file), pad_token="_", unk_token="<unk>", phonemize=False, normalize=True,
                              add_blank=True)
    config = VitsConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64, flow_size=32,
        spectrogram_bins=33, upsample_initial_channel=32, upsample_rates=[8, 8, 4], upsample_kernel_sizes=[16, 16, 8],
        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]], duration_predictor_filter_channels=32,
        duration_predictor_num_flows=2, depth_separable_num_layers=2, prior_encoder_num_flows=2,
        prior_encoder_num_wavenet_layers=2, posterior_encoder_num_wavenet_layers=2, sampling_rate=16000,
    )
    with torch.device("meta"):
        model = VitsModel(config)
    model.load_state_dict(_random_weights({n: t.shape for n, t in model.state_dict().items()}, seed), assign=True)
    leftover = [name for name, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if leftover:
        raise RuntimeError(f"demo VITS: no rule to build {', '.join(leftover)}")
    model.eval().save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest


def build_tiny_musicgen(dest: Path, *, seed: int = 0, max_positions: int = MUSICGEN_MAX_POSITIONS) -> Path:
    """Write the tiny MusicGen folder (model, generation config, tokenizer) into ``dest`` and return it.
    ``max_positions`` bounds the length it can make: (positions − codebooks + 1) / 50 seconds."""
    import torch
    from transformers import (
        EncodecConfig,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        T5Config,
    )
    from transformers.initialization import no_init_weights

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_tokenizer()
    codebook_size = 64
    # Encodec: 16 kHz / (8·5·4·2) = 50 frames a second; 0.9 kbps / (50 × log2(64) bits) = 3 codebooks.
    audio = EncodecConfig(sampling_rate=16000, audio_channels=1, num_filters=4, upsampling_ratios=[8, 5, 4, 2],
                          codebook_size=codebook_size, codebook_dim=16, hidden_size=16, num_residual_layers=1,
                          num_lstm_layers=1, target_bandwidths=[0.9], use_causal_conv=False)
    text = T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)
    # As in the released models, the padding/start token is one past the codebook (its embedding row is extra).
    decoder = MusicgenDecoderConfig(vocab_size=codebook_size, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=4, ffn_dim=64, num_codebooks=audio.num_quantizers,
                                    max_position_embeddings=max_positions, pad_token_id=codebook_size,
                                    bos_token_id=codebook_size, decoder_start_token_id=codebook_size)
    config = MusicgenConfig(text_encoder=text.to_dict(), audio_encoder=audio.to_dict(), decoder=decoder.to_dict())
    with no_init_weights():  # parameters left empty (no global-RNG draws); buffers computed as usual
        model = MusicgenForConditionalGeneration(config)
    tensors = dict(model.named_parameters())
    # The quantizer's codebooks are buffers; all-zero codebooks would decode every code to the same sound.
    tensors.update((name, b) for name, b in model.named_buffers() if name.endswith((".embed", ".embed_avg")))
    values = _random_weights({name: t.shape for name, t in tensors.items()}, seed)
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(values[name])
    generation = model.generation_config
    generation.do_sample, generation.top_k, generation.guidance_scale = True, 50, 3.0
    generation.pad_token_id = generation.bos_token_id = generation.decoder_start_token_id = codebook_size
    model.eval().save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest


def _random_weights(shapes: dict[str, Any], seed: int) -> dict[str, Any]:
    """A tensor for each named shape: biases, flow offsets and norm shifts 0; norm scales and weight-norm gains 1;
    every other tensor normal with std 1/sqrt(fan-in), drawn in sorted name order from a generator seeded with
    ``seed`` (so the result depends on nothing else)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name in sorted(shapes):
        shape = tuple(shapes[name])
        if name.endswith(("bias", "bias_ih_l0", "bias_hh_l0", "translate", "log_scale")):
            weights[name] = torch.zeros(shape)
        elif len(shape) == 1 or name.endswith("original0"):
            weights[name] = torch.ones(shape)
        else:
            weights[name] = torch.randn(shape, generator=generator) / math.sqrt(max(1, math.prod(shape[1:])))
    return weights


def _byte_tokenizer() -> Any:
    """A byte-level tokenizer with no merges (every text encodes, one token a byte) that ends each text with
    ``</s>`` as T5 does; ``<pad>`` is id 0, ``</s>`` id 1, ``<unk>`` id 2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {token: i for i, token in enumerate(specials)}
    for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
        vocab[char] = len(vocab)
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   model_max_length=512, clean_up_tokenization_spaces=False)
