"""The text generators' parameters: one schema for the CLI, the panel and the metadata.

:class:`TextParamsBase` holds what every text generator shares (the prompt, the mode, the chat, the sampling
settings); each generator adds its own load options: :class:`TextParams` (``text.transformers``) the number format,
``plugins.gguf.params.GGUFParams`` (``text.llamacpp``) threads and GPU layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from desktop.api import param

MODES = ("continue", "chat")
DTYPES = ("auto", "float16", "bfloat16", "float32")


@dataclass(frozen=True)
class TextParamsBase:
    """The fields every text generator shares, in this order (a subclass adds its load options after them)."""

    prompt: str = param("", prompt=True, multiline=True,
                        help="continue: the text to continue; chat: your new message.")
    mode: str = param("continue", choices=MODES,
                      help="continue: write on from the text; chat: answer as an assistant (instruct models).")
    system_prompt: str = param("", multiline=True, help="chat: instructions the assistant follows.")
    history: list[str] = param(default_factory=list,
                               help="chat: the earlier turns, alternating your messages and the assistant's replies.")
    max_new_tokens: int = param(200, min=1, max=8192, help="The most tokens to write.")
    temperature: float = param(0.8, min=0.0, max=5.0, step=0.05,
                               help="Randomness: 0 always takes the likeliest token, higher is more surprising.")
    top_p: float = param(0.95, min=0.0, max=1.0, step=0.01, label="Top-p",
                         help="Sample only from the likeliest tokens whose probabilities add up to this.")
    top_k: int = param(50, min=0, max=1000, label="Top-k",
                       help="Sample only from this many likeliest tokens (0: no limit).")
    repetition_penalty: float = param(1.1, min=1.0, max=3.0, step=0.05,
                                      help="Above 1, discourage repeating what was already written.")
    stop: list[str] = param(default_factory=list, max_items=16,
                            help="Stop writing at any of these texts (they are not included).")


@dataclass(frozen=True)
class TextParams(TextParamsBase):
    """``text.transformers``' params: the shared fields, then the number format of the weights and the adapter."""

    dtype: str = param("auto", choices=DTYPES, load_option=True, label="Number format",
                       help="Number format of the weights: auto picks float16/bfloat16 on a GPU, float32 on the CPU.")
    adapter: str = param("", label="Adapter",
                         help="A LoRA adapter to write with (an imported adapter's name or its folder; made by "
                              "training a LoRA on your writing); empty: the model as it is.")


PRESETS: dict[str, dict[str, float | int]] = {
    "creative": {"temperature": 1.1, "top_p": 0.98, "top_k": 0, "repetition_penalty": 1.05},
    "balanced": {"temperature": 0.8, "top_p": 0.95, "top_k": 50, "repetition_penalty": 1.1},
    "precise": {"temperature": 0.2, "top_p": 0.9, "top_k": 20, "repetition_penalty": 1.15},
}
"""Built-in sampling presets (the panel saves the user's own in its storage)."""
