"""Streaming ``model.generate`` token by token: incremental decoding, stop sequences, cancel, errors.

Three pieces, none of which imports torch or transformers at module level:

* :class:`TextAssembler` turns token ids, one at a time, into text chunks that are final: it decodes
  incrementally (a character split across tokens is held back until it is complete), finds stop sequences, and
  holds back text that could be the start of one until it is decided. The chunks concatenated are exactly the
  final text, which never contains a stop sequence.
* :class:`TokenRelay` is the ``StoppingCriteria`` passed to ``generate``. transformers calls it once per new token,
  on the generation thread, with the whole sequence so far (before it hands the token to any streamer, and on
  every device — a streamer on MPS runs a step behind). It feeds the assembler, passes the chunk to the job's
  thread and waits until that thread has reported it, then stops generation when a stop sequence was found or the
  job was cancelled: generation never runs ahead of what the user has seen, so a cancel lands within a token.
* :func:`stream` runs ``generate`` on its own thread and relays each token to the job's thread. However the
  generation thread ends — finished, stopped, or raising — it posts an end event, so the job never hangs; its
  exception is raised again on the job's thread, traceback kept.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TextAssembler", "TokenRelay", "StreamResult", "stream", "STOP_SEQUENCE", "EOS", "MAX_TOKENS", "CANCELLED"]

STOP_SEQUENCE, EOS, MAX_TOKENS, CANCELLED = "stop_sequence", "eos", "max_tokens", "cancelled"
"""Why the text ended (``TextOutput.metadata["stopped_by"]``); ``cancelled`` only on a partial output."""
_REPLACEMENT = "\ufffd"  # what a decoder writes for an incomplete UTF-8 sequence
_POLL_S = 0.1


class TextAssembler:
    """Token ids in, final text chunks out: incremental decoding with stop sequences.

    ``decode(ids)`` decodes a list of token ids (without special tokens). Decoding restarts from the last complete
    piece each time, with the previous piece as context, so the cost per token stays constant and tokenizers that
    drop a leading space at the start of a decode (SentencePiece) still get the spaces right.
    """

    def __init__(self, decode: Callable[[list[int]], str], stops: Sequence[str] = ()) -> None:
        self._decode = decode
        self.stops = tuple(s for s in stops if s)
        self._ids: list[int] = []
        self._prefix = 0  # ids[_prefix:_read] were decoded last time (context for the next piece)
        self._read = 0
        self._text = ""  # the decoded text so far (complete characters only, until finish)
        self.emitted = ""  # the text handed out as chunks: always a prefix of the final text
        self.stopped = False  # a stop sequence was found: the text is final

    @property
    def token_count(self) -> int:
        """How many token ids were added."""
        return len(self._ids)

    def add(self, token_id: int) -> str:
        """Add one generated token; return the text that became final (often empty)."""
        if self.stopped:
            return ""
        self._ids.append(token_id)
        context = self._decode(self._ids[self._prefix:self._read])
        piece = self._decode(self._ids[self._prefix:])
        if len(piece) <= len(context) or piece.endswith(_REPLACEMENT):
            return ""  # a special token, or a character not yet complete: wait for more
        self._text += piece[len(context):]
        self._prefix, self._read = self._read, len(self._ids)
        return self._advance(final=False)

    def finish(self) -> str:
        """Generation ended: return the rest of the text (an incomplete character stays a replacement char)."""
        if self.stopped:
            return ""
        context = self._decode(self._ids[self._prefix:self._read])
        piece = self._decode(self._ids[self._prefix:])
        if len(piece) > len(context):
            self._text += piece[len(context):]
        self._prefix = self._read = len(self._ids)
        return self._advance(final=True)

    def _advance(self, *, final: bool) -> str:
        text, done = self._text, len(self.emitted)
        cut = self._find_stop(text, max(0, done - max((len(s) for s in self.stops), default=0)))
        if cut is not None:
            self.stopped = True
            end = cut
        else:
            end = len(text) if final else len(text) - self._held_back(text)
        if end <= done:
            return ""
        chunk = text[done:end]
        self.emitted += chunk
        return chunk

    def _find_stop(self, text: str, start: int) -> int | None:
        """Where the first stop sequence starts in ``text`` (searching from ``start``), or None."""
        found = [i for i in (text.find(stop, start) for stop in self.stops) if i >= 0]
        return min(found) if found else None

    def _held_back(self, text: str) -> int:
        """How many characters at the end of ``text`` could be the start of a stop sequence."""
        held = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(text)), held, -1):
                if text.endswith(stop[:size]):
                    held = size
                    break
        return held


@dataclass
class StreamResult:
    """How a streamed generation ended. ``text`` is the final text (every chunk, concatenated); ``delivered``
    what the job reported before a cancel (equal to ``text`` when not cancelled)."""

    text: str
    delivered: str
    new_tokens: int
    last_token: int | None
    stopped_by_sequence: bool
    cancelled: bool


@dataclass
class _Event:
    kind: str  # "token" or "end"
    chunk: str = ""
    tokens: int = 0
    error: BaseException | None = None


@dataclass
class TokenRelay:
    """The ``StoppingCriteria`` that streams: called by ``generate`` once per new token (see the module docstring).

    ``cancelled()`` is checked before each token is reported and again after the job's thread has reported it.
    Calls after it said stop (a deferred stop check runs one step more) are ignored.
    """

    assembler: TextAssembler
    cancelled: Callable[[], bool]
    events: queue.Queue = field(default_factory=queue.Queue)
    last_token: int | None = None
    was_cancelled: bool = False
    _acks: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    _abandoned: threading.Event = field(default_factory=threading.Event)
    _done: bool = False

    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        import torch

        stop = self.step(int(input_ids[0, -1]))
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    def step(self, token_id: int) -> bool:
        """Take one new token; return True to stop generating."""
        if self._done:
            return True
        if self.cancelled() or self._abandoned.is_set():
            self.was_cancelled = self.cancelled()
            self._done = True
            return True
        self.last_token = token_id
        chunk = self.assembler.add(token_id)
        self.events.put(_Event("token", chunk, self.assembler.token_count))
        while not self._acks.acquire(timeout=_POLL_S):  # wait until the job's thread has reported the token
            if self._abandoned.is_set():
                break
        if self.cancelled():
            self.was_cancelled = True
        self._done = self.assembler.stopped or self.was_cancelled or self._abandoned.is_set()
        return self._done

    def acknowledge(self) -> None:
        """The job's thread reported the last token."""
        self._acks.release()

    def abandon(self) -> None:
        """The job's thread stopped listening (it raised): stop at the next token, never wait for it again."""
        self._abandoned.set()
        self._acks.release()


def stream(run: Callable[[TokenRelay], Any], relay: TokenRelay, *, on_chunk: Callable[[str], None],
           on_token: Callable[[int], None], cancelled: Callable[[], bool]) -> StreamResult:
    """Run ``run(relay)`` (which calls ``generate`` with ``relay`` as a stopping criterion) on a new thread and
    report each token on this thread: ``on_chunk(text)`` for text that became final, then ``on_token(count)``.

    Returns when the generation thread has ended; re-raises its exception if it raised.
    """
    delivered: list[str] = []

    def target() -> None:
        error: BaseException | None = None
        try:
            run(relay)
        except BaseException as exc:  # relayed to the job's thread, which raises it
            error = exc
        finally:
            relay.events.put(_Event("end", error=error))

    thread = threading.Thread(target=target, name="text-generate", daemon=True)
    thread.start()
    try:
        while True:
            try:
                event = relay.events.get(timeout=_POLL_S)
            except queue.Empty:
                if not thread.is_alive() and relay.events.empty():
                    raise RuntimeError("the generation thread ended without a word") from None
                continue
            if event.kind == "end":
                break
            if not cancelled():
                if event.chunk:
                    delivered.append(event.chunk)
                    on_chunk(event.chunk)
                on_token(event.tokens)
            relay.acknowledge()
    finally:
        relay.abandon()  # only matters if this thread raised: the generation thread then stops at its next token
        thread.join()
    if event.error is not None:
        raise event.error
    was_cancelled = relay.was_cancelled or cancelled()
    if not was_cancelled:
        tail = relay.assembler.finish()
        if tail:
            delivered.append(tail)
            on_chunk(tail)
    return StreamResult(text=relay.assembler.emitted, delivered="".join(delivered),
                        new_tokens=relay.assembler.token_count, last_token=relay.last_token,
                        stopped_by_sequence=relay.assembler.stopped, cancelled=was_cancelled)
