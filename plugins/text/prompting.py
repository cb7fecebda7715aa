"""From the job's params to the token ids the model reads: continue or chat, and fitting the context.

* continue: the prompt is the document's text up to the cursor, tokenized as it is (with the model's usual
  special tokens, such as a BOS);
* chat: the messages — the system prompt, the history's alternating user/assistant turns, the prompt as the last
  user message — go through the model's chat template (``apply_chat_template(..., add_generation_prompt=True)``).

Nothing here imports torch or transformers: the tokenizer is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop.api import GenerationError, ParamError

__all__ = ["Prompt", "chat_messages", "build_prompt", "fit_context", "truncation_notice"]


@dataclass(frozen=True)
class Prompt:
    """The prompt's token ids and, for reference, the text they were made from."""

    ids: list[int]
    text: str


def chat_messages(system_prompt: str, history: list[str], prompt: str) -> list[dict[str, str]]:
    """The chat as ``[{"role": ..., "content": ...}]``: the system prompt (if any), the history's turns (user,
    assistant, user, …) and the prompt as the last user message.

    Raises :class:`ParamError` for an empty prompt or a history that does not end with an assistant reply.
    """
    if not prompt.strip():
        raise ParamError("prompt", prompt, "chat mode needs a message to answer",
                         hint="Type your message, or switch to continue mode to write on from a text.")
    if len(history) % 2:
        raise ParamError("history", history,
                         "must alternate your messages and the assistant's replies, starting with yours and ending "
                         "with a reply (an even number of entries)")
    messages = [{"role": "system", "content": system_prompt}] if system_prompt.strip() else []
    for index, content in enumerate(history):
        messages.append({"role": "user" if index % 2 == 0 else "assistant", "content": content})
    messages.append({"role": "user", "content": prompt})
    return messages


def build_prompt(tokenizer: Any, mode: str, prompt: str, system_prompt: str = "",
                 history: list[str] | None = None) -> Prompt:
    """The token ids for ``mode`` (``continue`` or ``chat``); clear errors for what cannot work."""
    if mode == "chat":
        return _chat_prompt(tokenizer, chat_messages(system_prompt, list(history or []), prompt))
    ids = list(tokenizer(prompt, verbose=False)["input_ids"]) if prompt else []  # too long: fit_context
    if not ids:  # nothing to continue from: start a new document
        start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        if start is None:
            raise ParamError("prompt", prompt, "this model needs some text to continue",
                             hint="Type the beginning of the text.")
        ids = [start]
    return Prompt(ids=ids, text=prompt)


def _chat_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> Prompt:
    if not getattr(tokenizer, "chat_template", None):
        raise ParamError("mode", "chat", "this model has no chat template, so it cannot chat",
                         hint="Use continue mode with this model (it writes on from your text), or choose an "
                              "instruct or chat model.")
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as exc:  # a template may refuse (raise_exception), e.g. a model that takes no system prompt
        raise GenerationError(f"This model's chat template refused the conversation: {exc}",
                              hint="Some models take no system prompt: leave it empty and try again.") from exc
    # the template writes the special tokens itself (as apply_chat_template(tokenize=True) does)
    ids = list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    return Prompt(ids=ids, text=text)


def fit_context(ids: list[int], context_length: int, max_new_tokens: int) -> tuple[list[int], int]:
    """Keep the end of ``ids`` so that they and ``max_new_tokens`` new tokens fit the context; return the ids and
    how many were dropped from the start.

    Raises :class:`ParamError` when ``max_new_tokens`` alone leaves no room for the prompt.
    """
    if max_new_tokens >= context_length:
        raise ParamError("max_new_tokens", max_new_tokens,
                         f"must be less than this model's context length ({context_length} tokens, prompt included)",
                         hint=f"Ask for at most {context_length - 1} new tokens, fewer to keep more of the prompt.")
    room = context_length - max_new_tokens
    dropped = max(0, len(ids) - room)
    return ids[dropped:], dropped


def truncation_notice(total: int, dropped: int, context_length: int, max_new_tokens: int) -> str:
    """The warning shown when the start of a prompt had to go."""
    return (f"The prompt is {total} tokens long, but this model reads only {context_length} tokens including the "
            f"{max_new_tokens} new ones: the first {dropped} tokens were truncated (the model does not see them). "
            "Shorten the text or ask for fewer new tokens to keep it all.")
