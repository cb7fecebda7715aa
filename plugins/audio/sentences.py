"""Splitting text into sentences, so long text is spoken (and previewed) one sentence at a time.

A small rule-based splitter, not a linguistic one: it ends a sentence at ``.``, ``!``, ``?``, ``…`` (and the
closing quotes or brackets after them) when whitespace follows, at ``。！？`` even without whitespace, and at every
line break. It does not split after common abbreviations (``Mr.``, ``e.g.``), single initials (``J. R. Tolkien``)
or inside numbers (``3.14``). Pieces with no letter or digit (a stray ``...``) join the sentence before them, and a
sentence longer than ``max_chars`` is cut at clause punctuation, else between words, else anywhere.
"""

from __future__ import annotations

import re

__all__ = ["split_sentences", "MAX_SENTENCE_CHARS"]

MAX_SENTENCE_CHARS = 300
"""The longest piece :func:`split_sentences` returns by default (long sentences are cut into clauses)."""

_ABBREVIATIONS = frozenset({
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "cf", "no", "fig", "approx",
    "mt", "ave", "inc", "ltd", "co", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
    "dec", "z.b", "bzw", "ca", "usw", "mme", "mlle",
})
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s)|[。！？]+[”’」』)]*")
_CLAUSE = re.compile(r"[,;:—–]\s+|\s+[—–]\s+")


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """The sentences of ``text``, stripped, in order, none empty and none longer than ``max_chars``.

    Text with no letter or digit at all gives one piece (or none when it is only whitespace): deciding whether it
    can be spoken is the caller's job.
    """
    pieces: list[str] = []
    for line in text.splitlines():
        for sentence in _split_line(line):
            if pieces and not any(ch.isalnum() for ch in sentence):
                pieces[-1] = f"{pieces[-1]} {sentence}" if not _is_cjk_end(pieces[-1]) else pieces[-1] + sentence
            else:
                pieces.append(sentence)
    return [part for piece in pieces for part in _wrap(piece, max_chars)]


def _split_line(line: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(line):
        end = match.end()
        candidate = line[start:end].strip()
        if not candidate:
            continue
        if match.group().startswith(".") and _ends_with_abbreviation(line[start:match.start()]):
            continue
        sentences.append(candidate)
        start = end
    rest = line[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _ends_with_abbreviation(before: str) -> bool:
    """True when the word before a full stop is an abbreviation or a single initial."""
    words = before.split()
    if not words:
        return False
    word = words[-1].lstrip("\"'“‘«([").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _is_cjk_end(sentence: str) -> bool:
    return sentence[-1:] in "。！？」』"


def _wrap(sentence: str, max_chars: int) -> list[str]:
    """Cut a sentence longer than ``max_chars``: after clause punctuation, else before a word, else anywhere."""
    parts: list[str] = []
    while len(sentence) > max_chars:
        window = sentence[:max_chars + 1]
        cut = max((m.end() for m in _CLAUSE.finditer(window) if m.end() <= max_chars), default=0)
        if cut < max_chars // 3:
            space = window.rfind(" ")
            cut = space if space >= max_chars // 3 else max_chars
        head, sentence = sentence[:cut].strip(), sentence[cut:].strip()
        if head:
            parts.append(head)
    if sentence:
        parts.append(sentence)
    return parts
