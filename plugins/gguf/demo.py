"""The GGUF generator's demo model: a tiny Qwen2 with random weights, written straight to one F16 ``.gguf`` file.

:func:`build_tiny_gguf` needs no torch and no transformers: the weights are drawn from a NumPy generator seeded with
``seed`` (the same seed gives the same file), the tokenizer is the text demo's byte-level BPE
(:func:`plugins.text.demo.demo_tokenizer`, 320 tokens) with its chat template, and :func:`plugins.gguf.convert.
write_gguf` writes the file. The shape: 2 layers, 64 wide, 4 attention heads, 2 key/value heads, 128 in the MLP,
512 tokens of context — about 90 thousand parameters, a file of about 240 KB, built in well under a second.

Like the transformers demo, random weights write gibberish; to keep it readable the output layer is zero for every
token that is not printable ASCII text (control bytes, pieces of multi-byte characters, the special tokens), so those
are picked only rarely.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_gguf", "DEMO_FILE_NAME", "DEMO_SHAPE"]

DEMO_FILE_NAME = "model.gguf"
"""The name of the file :func:`build_tiny_gguf` writes in its folder."""

DEMO_SHAPE = {"num_layers": 2, "hidden_size": 64, "num_heads": 4, "num_kv_heads": 2, "intermediate_size": 128}
"""The demo's Qwen2 shape (its context length is the text demo's, 512)."""


def build_tiny_gguf(dest: Path, *, seed: int = 0) -> Path:
    """Write the demo model to ``dest/model.gguf`` (``dest`` is created if needed) and return the file's path."""
    from plugins.gguf.convert import ModelConfig, write_gguf
    from plugins.text.demo import CHAT_TEMPLATE, CONTEXT_LENGTH, demo_tokenizer

    tokenizer = demo_tokenizer()
    config = ModelConfig(architecture="qwen2", vocab_size=tokenizer.get_vocab_size(), context_length=CONTEXT_LENGTH,
                         name="Studiolo demo (tiny random Qwen2)", **DEMO_SHAPE)
    weights = _random_weights(config, seed, _printable_mask(tokenizer, config.vocab_size))
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return write_gguf(dest / DEMO_FILE_NAME, weights, config, tokenizer, dtype="f16", chat_template=CHAT_TEMPLATE,
                      bos_token="<|endoftext|>", eos_token="<|endoftext|>", eot_token="<|end|>")


def _printable_mask(tokenizer: Any, vocab_size: int) -> Any:
    """A column of 1.0 for tokens that decode to printable ASCII text, 0.0 for the rest."""
    import numpy as np

    mask = np.zeros((vocab_size, 1), dtype=np.float32)
    for token_id in range(vocab_size):
        text = tokenizer.decode([token_id], skip_special_tokens=True)
        mask[token_id] = 1.0 if text and text.isascii() and text.isprintable() else 0.0
    return mask


def _random_weights(config: Any, seed: int, printable: Any) -> dict[str, Any]:
    """HF-named Qwen2 weights drawn in a fixed order from ``numpy.random.default_rng(seed)``: embeddings std 1,
    matrices std 1/sqrt(fan_in), norm scales 1, biases 0; the output layer std 0.4 with its rows zeroed for tokens
    that are not printable text."""
    import numpy as np

    rng = np.random.default_rng(seed)
    width, inner = config.hidden_size, config.intermediate_size
    kv_width = width // config.num_heads * config.num_kv_heads

    def matrix(rows: int, cols: int) -> Any:
        return rng.standard_normal((rows, cols), dtype=np.float32) / math.sqrt(cols)

    weights = {"model.embed_tokens.weight": rng.standard_normal((config.vocab_size, width), dtype=np.float32)}
    for layer in range(config.num_layers):
        prefix = f"model.layers.{layer}."
        weights.update({
            prefix + "input_layernorm.weight": np.ones(width, dtype=np.float32),
            prefix + "self_attn.q_proj.weight": matrix(width, width),
            prefix + "self_attn.q_proj.bias": np.zeros(width, dtype=np.float32),
            prefix + "self_attn.k_proj.weight": matrix(kv_width, width),
            prefix + "self_attn.k_proj.bias": np.zeros(kv_width, dtype=np.float32),
            prefix + "self_attn.v_proj.weight": matrix(kv_width, width),
            prefix + "self_attn.v_proj.bias": np.zeros(kv_width, dtype=np.float32),
            prefix + "self_attn.o_proj.weight": matrix(width, width),
            prefix + "post_attention_layernorm.weight": np.ones(width, dtype=np.float32),
            prefix + "mlp.gate_proj.weight": matrix(inner, width),
            prefix + "mlp.up_proj.weight": matrix(inner, width),
            prefix + "mlp.down_proj.weight": matrix(width, inner),
        })
    weights["model.norm.weight"] = np.ones(width, dtype=np.float32)
    weights["lm_head.weight"] = rng.standard_normal((config.vocab_size, width), dtype=np.float32) * 0.4 * printable
    return weights
