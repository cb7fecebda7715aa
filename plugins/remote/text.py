"""``remote.text``: continue a text or chat with a language model on an OpenAI-compatible server, streaming.

* chat → ``POST /chat/completions`` (the system prompt, the history's alternating turns, the prompt as the last user
  message); continue → ``POST /completions`` (the prompt as it is). Sent: ``max_tokens``, ``temperature``,
  ``top_p``, ``stop``, the job's ``seed``, and ``top_k``/``repetition_penalty`` when set (see
  :mod:`plugins.remote.params`); always ``stream=True`` with ``stream_options.include_usage``, asked again without
  it (and never again of that server) when a server refuses it.
* Each piece of text goes to ``ctx.preview`` as it comes (the text panel appends it) and to ``ctx.progress``. A
  cancel is checked at every piece and lands at once even while the server is silent (:mod:`plugins.remote.cancel`):
  the connection is closed (the server stops writing) and the text so far is kept as a partial output.
* The output's metadata: the text generators' keys (``mode``, ``prompt_tokens``, ``new_tokens``, ``stopped_by``,
  ``seed``) from the server's ``usage`` (None where it sends none: llama-cpp-python's server does not while
  streaming), plus ``finish_reason``, ``usage``, ``chunks`` (the pieces streamed), ``server`` (name and URL) and
  ``model_id``, and a Studiolo server's own record (its seed and job) under ``remote``.
* Refused: more text than ``max_new_tokens`` tokens can hold (16 characters a token and a margin), more bytes than
  such a stream can take, an answer that is not JSON, an error event in the stream (the server's message is shown).
  A stream that stops before saying it is finished is the server gone (``ServerUnavailableError``).

Nothing is imported at module level beyond ``desktop.api`` and the plugin's light modules; ``openai`` at the job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import (
    GenerationError,
    JobCancelled,
    RemoteServer,
    RunContext,
    ServerUnavailableError,
    StudioloError,
    TextOutput,
)
from plugins.remote.base import RemoteGenerator, RemoteHandle, server_metadata
from plugins.remote.cancel import CancelWatch
from plugins.remote.client import RemoteClient, remote_error, server_message
from plugins.remote.params import RemoteTextParams

__all__ = ["RemoteTextGenerator", "TEXT_READ_TIMEOUT_S", "max_text_chars", "max_stream_bytes"]

TEXT_READ_TIMEOUT_S = 300.0
"""Seconds to wait for the next piece of a streamed answer (the first one comes after the whole prompt was read:
minutes for a long prompt on a CPU server)."""
CHARS_PER_TOKEN = 16
"""The most characters a token is taken to hold (a token is 1–16 characters in every tokenizer in use)."""
BYTES_PER_TOKEN = 4096
"""The most bytes one streamed token may take on the wire (a chunk is a JSON object of a few hundred bytes)."""
_MARGIN_CHARS = 4096
_MARGIN_BYTES = 1024 * 1024
_NO_USAGE: set[str] = set()  # base URLs of servers that refused stream_options: asked without it from then on
_STUDIOLO: dict[str, bool] = {}  # base URL → whether it is a Studiolo server (asked once, when it matters)


def max_text_chars(max_tokens: int) -> int:
    """The most characters an answer of ``max_tokens`` tokens may have before it is refused."""
    return max_tokens * CHARS_PER_TOKEN + _MARGIN_CHARS


def max_stream_bytes(max_tokens: int) -> int:
    """The most bytes the stream of an answer of ``max_tokens`` tokens may have before it is refused."""
    return max_tokens * BYTES_PER_TOKEN + _MARGIN_BYTES


class RemoteTextGenerator(RemoteGenerator):
    """Text from a language model on a configured server, streamed like the local text generators."""

    id = "remote.text"
    name = "Remote text"
    kind = "text"
    description = "Continue a text or chat with a language model on one of your servers."
    Params = RemoteTextParams

    def create_panel(self, host: Any) -> Any:
        """The text panel (documents, chat, drafts, presets), with no load options."""
        from plugins.text.panel import create_panel

        return create_panel(host, params_type=RemoteTextParams, load_fields=())

    def params_from_file(self, path: Path) -> RemoteTextParams | None:
        """Params from a draft exported as .md (front matter) or .txt (JSON sidecar); None otherwise. Never raises."""
        from plugins.text.drafts import typed_params_from_export

        return typed_params_from_export(RemoteTextParams, path)

    def generate(self, handle: RemoteHandle, params: RemoteTextParams, ctx: RunContext) -> list[TextOutput]:
        """Stream the answer of ``handle``'s model; see the module docstring."""
        from plugins.text.prompting import chat_messages

        server = handle.configured()
        messages = (chat_messages(params.system_prompt, list(params.history), params.prompt)
                    if params.mode == "chat" else None)  # a ParamError for an empty message, before any request
        answer = _Answer(params, ctx, server, handle.model_id)
        with RemoteClient(server, read_timeout=TEXT_READ_TIMEOUT_S,
                          max_bytes=max_stream_bytes(params.max_new_tokens)) as client, \
                CancelWatch(lambda: ctx.cancelled, client.abort):
            ctx.progress(0, params.max_new_tokens, f"Asking {server.name}…")
            try:
                stream = _open_stream(client, handle.model_id, params, messages, ctx.seed)
                try:
                    answer.read(stream)
                finally:
                    stream.close()
            except StudioloError:
                raise
            except Exception as exc:
                if ctx.cancelled:  # the cancel closed the connection under the read
                    raise answer.cancelled() from None
                raise remote_error(exc, server, model_id=handle.model_id, timeout=TEXT_READ_TIMEOUT_S) from exc
        return [TextOutput(text=answer.text, metadata=answer.metadata())]


class _Answer:
    """The answer as it streams in: its pieces, why it ended, the usage and the server's own record."""

    def __init__(self, params: RemoteTextParams, ctx: RunContext, server: RemoteServer, model_id: str) -> None:
        self.params = params
        self.ctx = ctx
        self.server = server
        self.model_id = model_id
        self.parts: list[str] = []
        self.chars = 0
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self.remote: Any = None
        self.limit = max_text_chars(params.max_new_tokens)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def read(self, stream: Any) -> None:
        """Take the stream's chunks until it ends (or the job is cancelled: :class:`JobCancelled`)."""
        server, chat = self.server, self.params.mode == "chat"
        for chunk in stream:
            if self.ctx.cancelled:
                raise self.cancelled()
            piece, reason = _piece(chunk, chat)
            self._note(chunk)
            if piece:
                self.chars += len(piece)
                if self.chars > self.limit:
                    raise GenerationError(
                        f"{server.name} ({server.url}) sent more text than {self.params.max_new_tokens} tokens can "
                        f"hold (over {self.limit:,} characters): refused.",
                        hint="Check that the server is the OpenAI-compatible server you meant and that it honours "
                             "max_tokens.")
                self.parts.append(piece)
                self.ctx.preview(piece)
                self.ctx.progress(min(len(self.parts), self.params.max_new_tokens), self.params.max_new_tokens)
            if reason:
                self.finish_reason = reason
        if self.ctx.cancelled:  # the cancel closed the connection: the stream ended early because of it
            raise self.cancelled()
        if self.finish_reason is None:
            raise ServerUnavailableError(f"{server.name} ({server.url}) ended its answer before finishing it.",
                                         hint="The server may have stopped or restarted. Try again, or use another "
                                              "server.", server=server.name)

    def _note(self, chunk: Any) -> None:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            counts = {k: getattr(usage, k, None) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
            self.usage = {k: v for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)}
        extra = getattr(chunk, "model_extra", None) or {}
        if isinstance(extra.get("studiolo"), dict):
            self.remote = extra["studiolo"]

    def metadata(self, *, cancelled: bool = False) -> dict[str, Any]:
        """The output's metadata (see the module docstring)."""
        from plugins.text.streaming import CANCELLED, EOS, MAX_TOKENS

        usage = self.usage or {}
        if cancelled:
            stopped_by: str | None = CANCELLED
        elif self.finish_reason == "length":
            stopped_by = MAX_TOKENS
        elif self.finish_reason == "stop":  # the server does not say whether a stop sequence or the end token
            stopped_by = "stop" if self.params.stop else EOS
        else:
            stopped_by = self.finish_reason
        metadata: dict[str, Any] = {
            "mode": self.params.mode, "prompt_tokens": usage.get("prompt_tokens"),
            "new_tokens": usage.get("completion_tokens"), "stopped_by": stopped_by,
            "finish_reason": self.finish_reason, "usage": self.usage, "chunks": len(self.parts),
            "seed": self.ctx.seed,
        }
        metadata.update(server_metadata(self.server, self.model_id))
        if self.remote is not None:
            metadata["remote"] = self.remote
        return metadata

    def cancelled(self) -> JobCancelled:
        """The end of a cancelled job: the text so far (none when nothing came), marked partial."""
        if not self.parts:
            return JobCancelled()
        return JobCancelled(partial=[TextOutput(text=self.text, metadata=self.metadata(cancelled=True), partial=True)])


def _piece(chunk: Any, chat: bool) -> tuple[str, str | None]:
    """The text and the finish reason in one chunk (``ValueError`` for a chunk in no known shape)."""
    choices = getattr(chunk, "choices", None)
    if choices is None:
        return "", None
    if not isinstance(choices, list):
        raise ValueError("a chunk whose choices are not a list")
    if not choices:
        return "", None  # the usage chunk
    choice = choices[0]
    if chat:
        delta = getattr(choice, "delta", None)
        content = getattr(delta, "content", None) if delta is not None else None
    else:
        content = getattr(choice, "text", None)
    reason = getattr(choice, "finish_reason", None)
    if (content is not None and not isinstance(content, str)) or (reason is not None and not isinstance(reason, str)):
        raise ValueError("a chunk whose text or finish reason is not a string")
    return content or "", reason


def _open_stream(client: RemoteClient, model_id: str, params: RemoteTextParams,
                 messages: list[dict[str, str]] | None, seed: int) -> Any:
    """The streamed answer, asking for the usage where the server has not refused that before."""
    ask_usage = client.server.url not in _NO_USAGE
    try:
        return _create(client, model_id, params, messages, seed, usage=ask_usage)
    except Exception as exc:
        if not (ask_usage and _refused_stream_options(exc)):
            raise
    _NO_USAGE.add(client.server.url)
    return _create(client, model_id, params, messages, seed, usage=False)


def _create(client: RemoteClient, model_id: str, params: RemoteTextParams, messages: list[dict[str, str]] | None,
            seed: int, *, usage: bool) -> Any:
    kwargs: dict[str, Any] = {
        "model": model_id, "stream": True, "max_tokens": params.max_new_tokens, "temperature": params.temperature,
        "top_p": params.top_p, "seed": seed, "extra_headers": client.extra_headers,
        "extra_body": _extensions(params, client),
    }
    if params.stop:
        kwargs["stop"] = list(params.stop)
    if usage:
        kwargs["stream_options"] = {"include_usage": True}
    if messages is not None:
        return client.openai.chat.completions.create(messages=messages, **kwargs)
    return client.openai.completions.create(prompt=params.prompt, **kwargs)


def _extensions(params: RemoteTextParams, client: RemoteClient) -> dict[str, Any]:
    """Sampling settings beyond OpenAI's, sent only when set: top-k, and the repetition penalty as vLLM and
    Studiolo name it (``repetition_penalty``) and, but to a Studiolo server (which refuses names its generator does
    not have), as llama.cpp does (``repeat_penalty``)."""
    extra: dict[str, Any] = {}
    if params.top_k > 0:
        extra["top_k"] = params.top_k
    if params.repetition_penalty != 1.0:
        extra["repetition_penalty"] = params.repetition_penalty
        if not _is_studiolo(client):
            extra["repeat_penalty"] = params.repetition_penalty
    return extra


def _is_studiolo(client: RemoteClient) -> bool:
    """Whether the server is a Studiolo server (its model entries carry ``studiolo`` objects): asked once."""
    from plugins.remote.listing import listed_models, studiolo_info

    url = client.server.url
    if url not in _STUDIOLO:
        _STUDIOLO[url] = any(studiolo_info(e) is not None for e in listed_models(client) or [])
    return _STUDIOLO[url]


def _refused_stream_options(exc: BaseException) -> bool:
    """Whether a server refused the request because of ``stream_options`` (a 400 or 422 naming it)."""
    import openai

    if not isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return False
    said = f"{server_message(exc.body)} {exc.message}".lower()
    return "stream_options" in said or "include_usage" in said
