"""Streaming ``model.generate`` token by token: incremental decoding, stop sequences, cancel, errors.

Three pieces, none of which imports torch or transformers at module level:

* :class:`TextAssembler` turns token ids, one at a time, into text chunks that are final: it decodes
  incrementally (a character split across tokens is held back until it is complete), finds stop sequences, and
  holds back text that could be the start of one until it is decided. The chunks concatenated are exactly the
  final text, which never contains a stop sequence.
* :class:`TokenRelay` is the ``StoppingCriteria`` passed to ``generate``. transformers calls it once per new token
  with the whole sequence so far (before it hands the token to any streamer, and on every device — a streamer on
  MPS runs a step behind). It feeds the assembler, reports the chunk and the token count at once, and stops
  generation when a stop sequence was found or the job was cancelled — checked at every token, so a cancel lands
  within one token and generation never runs ahead of what was reported.
* :func:`stream` runs ``generate`` on the job's own (worker) thread with the relay as a stopping criterion. There
  is no second thread to hand tokens over (a ``TextIteratorStreamer`` would need one, and hangs when ``generate``
  raises in it): an exception in ``generate`` simply propagates, traceback kept, and a token costs no thread
  switch — the hand-over cost ~4 % of a tiny model's throughput (benchmarks/text_engine.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TextAssembler", "TokenRelay", "StreamResult", "stream", "STOP_SEQUENCE", "EOS", "MAX_TOKENS", "CANCELLED"]

STOP_SEQUENCE, EOS, MAX_TOKENS, CANCELLED = "stop_sequence", "eos", "max_tokens", "cancelled"
"""Why the text ended (``TextOutput.metadata["stopped_by"]``); ``cancelled`` only on a partial output."""
_REPLACEMENT = "\ufffd"  # what a decoder writes for an incomplete UTF-8 sequence


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
class TokenRelay:
    """The ``StoppingCriteria`` that streams: called by ``generate`` once per new token (see the module docstring).

    ``cancelled()`` is checked before each token is reported and again after it was reported (a cancel made by
    whatever the report triggered stops generation at that very token). Calls after it said stop (a deferred stop
    check runs one step more) are ignored.
    """

    assembler: TextAssembler
    cancelled: Callable[[], bool]
    report: Callable[[str, int], None] = lambda chunk, tokens: None
    last_token: int | None = None
    was_cancelled: bool = False
    _done: bool = False

    def __call__(self, input_ids: Any, scores: Any = None, **kwargs: Any) -> Any:
        import torch

        stop = self.step(int(input_ids[0, -1]))
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)

    def step(self, token_id: int) -> bool:
        """Take one new token; return True to stop generating."""
        if self._done:
            return True
        if self.cancelled():
            self.was_cancelled = self._done = True
            return True
        self.last_token = token_id
        self.report(self.assembler.add(token_id), self.assembler.token_count)
        if self.cancelled():
            self.was_cancelled = True
        self._done = self.assembler.stopped or self.was_cancelled
        return self._done


def stream(run: Callable[[TokenRelay], Any], relay: TokenRelay, *, on_chunk: Callable[[str], None],
           on_token: Callable[[int], None], cancelled: Callable[[], bool]) -> StreamResult:
    """Run ``run(relay)`` (which calls ``generate`` with ``relay`` as a stopping criterion) on this thread,
    reporting each token as it comes: ``on_chunk(text)`` for text that became final, then ``on_token(count)``.
    An exception in ``generate`` propagates."""
    delivered: list[str] = []

    def report(chunk: str, tokens: int) -> None:
        if cancelled():
            return
        if chunk:
            delivered.append(chunk)
            on_chunk(chunk)
        on_token(tokens)

    relay.report = report
    run(relay)
    was_cancelled = relay.was_cancelled or cancelled()
    if not was_cancelled:
        tail = relay.assembler.finish()
        if tail:
            delivered.append(tail)
            on_chunk(tail)
    return StreamResult(text=relay.assembler.emitted, delivered="".join(delivered),
                        new_tokens=relay.assembler.token_count, last_token=relay.last_token,
                        stopped_by_sequence=relay.assembler.stopped, cancelled=was_cancelled)
