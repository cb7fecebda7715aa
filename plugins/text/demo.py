"""A tiny causal language model with random weights, built offline in about a second: the text generator's demo.

:func:`build_tiny_lm` writes a complete transformers folder — a byte-level BPE tokenizer trained on
:data:`DEMO_TEXT` (about 320 tokens, with a simple chat template so chat mode works), a 2-layer GPT-2 (64 wide,
512 tokens of context) and its generation config — that loads through the same code as a downloaded model
(``AutoTokenizer`` / ``AutoModelForCausalLM``, safetensors).

The weights are random, drawn from a private ``torch.Generator`` seeded with ``seed``: the same seed gives the
same files, and building never touches torch's process-wide random generator (another job may be holding it).
Random weights write gibberish; to keep it readable the output layer is zero for every token that is not printable
ASCII text (control bytes, pieces of multi-byte characters, the special tokens), so those are picked only rarely.
The tokenizer still reads any text: its alphabet has all 256 bytes.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["build_tiny_lm", "demo_tokenizer", "DEMO_TEXT", "CHAT_TEMPLATE", "SPECIAL_TOKENS", "CONTEXT_LENGTH"]

DEMO_TEXT = """\
The studio was quiet in the morning. The light fell on the desk and on the paper and on the small brass lamp.
She wrote a line, then another line, and the lines became a page. The page became a story about the sea.
The sea was grey in the morning and blue at noon. The boats went out early and came back at night.
He read the story aloud in the evening. The lamp was warm, the night was long and the story was good.
A painter mixed blue and white on a wooden board and looked at the window for a long time.
The window showed a garden, a wall, a tree with red apples and a cat asleep in the sun.
In the afternoon the wind came from the hills and the paper on the desk moved a little.
They made tea, talked about colours and songs, and wrote down what they wanted to make next.
Every picture starts with a line, every song with a note, and every story with a word.
At night the studio was dark except for the lamp, and the sea was loud beyond the wall.
"What are you writing?" she asked. "A letter to the morning," he said, and smiled.
Numbers too: 1, 2, 3, 10, 42, 100 - and marks: (yes) [no] {maybe} #5 @home 50% a+b=c; x/y * z!
"""
"""The text the demo tokenizer's merges are learned from (the weights learn nothing: they are random)."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>")
"""Special tokens, ids 0–4: ``<|endoftext|>`` is BOS/EOS/padding; the others mark chat turns."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""The demo's chat template (Jinja): ``<|role|>`` newline, the message, ``<|end|>``, one turn a line."""

CONTEXT_LENGTH = 512
_VOCAB_SIZE = 320
_WIDTH = 64


def build_tiny_lm(dest: Path, *, seed: int = 0) -> Path:
    """Write the tiny model folder into ``dest`` (created if needed) and return it. Offline, about a second."""
    from transformers import GPT2Config, GPT2LMHeadModel

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    vocab_size = len(tokenizer)
    eos, end = (tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|end|>"))
    config = GPT2Config(vocab_size=vocab_size, n_positions=CONTEXT_LENGTH, n_embd=_WIDTH, n_layer=2, n_head=4,
                        tie_word_embeddings=False, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos)
    import torch

    with torch.device("meta"):
        model = GPT2LMHeadModel(config)
    _materialise(model, seed, _printable_mask(tokenizer, vocab_size))
    model.generation_config.eos_token_id = [eos, end]  # chat turns end at <|end|>
    model.generation_config.pad_token_id = eos
    model.save_pretrained(str(dest))
    tokenizer.save_pretrained(str(dest))
    return dest


def demo_tokenizer() -> Any:
    """The demo's byte-level BPE tokenizer learned from :data:`DEMO_TEXT`, as a bare ``tokenizers.Tokenizer``
    (no transformers import; the GGUF demo reuses it). :data:`SPECIAL_TOKENS` are ids 0–4."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=_VOCAB_SIZE, special_tokens=list(SPECIAL_TOKENS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(DEMO_TEXT.splitlines(), trainer=trainer)
    return raw


def _tokenizer() -> Any:
    """:func:`demo_tokenizer` wrapped for transformers, with the chat template."""
    from transformers import PreTrainedTokenizerFast

    raw = demo_tokenizer()
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", model_max_length=CONTEXT_LENGTH,
                                   chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False)


def _printable_mask(tokenizer: Any, vocab_size: int) -> list[float]:
    """1.0 for tokens that decode to printable ASCII text, 0.0 for the rest (control bytes, partial characters,
    special tokens)."""
    mask = []
    for token_id in range(vocab_size):
        text = tokenizer.decode([token_id], skip_special_tokens=True)
        mask.append(1.0 if text and text.isascii() and text.isprintable() else 0.0)
    return mask


def _materialise(model: Any, seed: int, printable: list[float]) -> None:
    """Give a meta-device GPT-2 real random weights, drawn in a fixed order from a generator seeded with ``seed``.

    Token and position embeddings get std 1 (so the position changes what comes next: no short loops), matrices
    std 1/sqrt(fan_in), norm scales 1, biases 0; the output layer std 0.4, its rows zeroed for tokens that are not
    printable text. Non-persistent buffers the meta device left empty are rebuilt by the model's own init.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    rows = torch.tensor(printable)[:, None]
    state = {}
    for name, tensor in model.state_dict().items():
        shape = tensor.shape
        if name.endswith("bias") and len(shape) == 1:
            state[name] = torch.zeros(shape)
        elif len(shape) == 1:
            state[name] = torch.ones(shape)
        elif name.endswith(("wte.weight", "wpe.weight")):
            state[name] = torch.randn(shape, generator=generator)
        elif name == "lm_head.weight":
            state[name] = torch.randn(shape, generator=generator) * 0.4 * rows
        else:
            state[name] = torch.randn(shape, generator=generator) / math.sqrt(shape[0])
    model.load_state_dict(state, assign=True)
    leftover = [name for name, buffer in model.named_buffers() if buffer.is_meta]
    if leftover:
        raise RuntimeError(f"demo model: no rule to build the buffers {', '.join(leftover)}")
    model.eval()
