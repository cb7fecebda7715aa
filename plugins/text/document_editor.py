"""The document editor of the text panel: the model writes on at the cursor, and what it wrote stays known.

* :meth:`DocumentEditor.begin_generation` fixes the insertion point (the cursor, or the end of the selection);
  :meth:`~DocumentEditor.append_chunk` inserts each streamed chunk there and
  :meth:`~DocumentEditor.end_generation` closes it. The whole generation is one undo step: the first chunk opens
  an edit block (``beginEditBlock``), the later ones join it (``joinPreviousEditBlock``), and the end marks the
  generated text with an invisible character-format property inside the same block, so that what the person
  types next is not merged into the generation's undo step by Qt.
* While the model writes, the editor is read-only (the text can still be selected, copied and scrolled), the
  person's cursor and selection keep their place in the text, and the view follows the new text only when the
  cursor is at the insertion point.
* Generated spans are tracked as the text is edited (``contentsChange``) and can be highlighted
  (``ExtraSelections`` with a light background).

Positions in this class's public API are Python string indexes into :meth:`DocumentEditor.text`; Qt counts
UTF-16 code units, which differ for characters outside the Basic Multilingual Plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QPlainTextEdit, QTextEdit, QWidget

__all__ = ["DocumentEditor", "GeneratedSpan", "GENERATED_PROPERTY"]

GENERATED_PROPERTY = int(QTextFormat.Property.UserProperty) + 0x5717
"""Character-format property set on generated text (the generation's number)."""


@dataclass
class GeneratedSpan:
    """A generated piece of the text: ``start``/``end`` (end exclusive) and what the caller attached."""

    start: int
    end: int
    data: Any = None


def to_qt(text: str, index: int) -> int:
    """A Python index into ``text`` as a Qt (UTF-16) position."""
    head = text[:index]
    return len(head) + sum(1 for ch in head if ord(ch) > 0xFFFF)


def from_qt(text: str, position: int) -> int:
    """A Qt (UTF-16) position in ``text`` as a Python index."""
    if text.isascii() or position <= 0:
        return max(0, min(position, len(text)))
    units = 0
    for index, ch in enumerate(text):
        if units >= position:
            return index
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


class DocumentEditor(QPlainTextEdit):
    """A plain-text editor the model writes into. See the module docstring."""

    spans_changed = Signal()
    """The generated spans changed (a generation ended, or an edit moved or removed one)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("document_editor")
        self.setAccessibleName(self.tr("Document"))
        self.setPlaceholderText(self.tr("Write something, put the cursor where the model should write on, "
                                        "and press Generate."))
        self._spans: list[list[Any]] = []  # [start, end, data] in Qt positions
        self._cursor: QTextCursor | None = None  # inserts the generation
        self._start = self._end = 0  # the running generation's span (Qt positions)
        self._data: Any = None
        self._streamed = ""
        self._mark = 0
        self._highlight = True
        self._was_read_only = False
        self._marking = False
        self.document().contentsChange.connect(self._on_contents_change)

    # -- the text ---------------------------------------------------------------------------------------------

    def text(self) -> str:
        """The document's text."""
        return self.toPlainText()

    def set_document(self, text: str, spans: list[GeneratedSpan] | tuple[GeneratedSpan, ...] = ()) -> None:
        """Show ``text`` (the undo history starts afresh) with these generated spans."""
        self._spans = []
        self.setPlainText(text)
        for span in spans:
            start, end = max(0, min(span.start, len(text))), max(0, min(span.end, len(text)))
            if start < end:
                self._spans.append([to_qt(text, start), to_qt(text, end), span.data])
        self._refresh()
        self.spans_changed.emit()

    def insertion_point(self) -> int:
        """Where a generation would start: the cursor, or the end of the selection."""
        return from_qt(self.text(), self.textCursor().selectionEnd())

    def text_before_insertion(self) -> str:
        """What the model continues: the text before :meth:`insertion_point`."""
        return self.text()[:self.insertion_point()]

    # -- generating -------------------------------------------------------------------------------------------

    def is_generating(self) -> bool:
        return self._cursor is not None

    def begin_generation(self, data: Any = None) -> int:
        """Start a generation at :meth:`insertion_point`; ``data`` is attached to its span. Returns the point."""
        if self._cursor is not None:
            self.end_generation()
        position = self.textCursor().selectionEnd()
        self._cursor = QTextCursor(self.document())
        self._cursor.setPosition(position)
        self._start = self._end = position
        self._data, self._streamed = data, ""
        self._was_read_only = self.isReadOnly()
        self.setReadOnly(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        return from_qt(self.text(), position)

    def append_chunk(self, text: str) -> None:
        """Insert a streamed chunk at the end of the running generation (ignored when none is running)."""
        if self._cursor is None or not text:
            return
        self._insert(text)
        self._streamed += text
        self._refresh()

    def streamed_text(self) -> str:
        """What the running generation has written so far."""
        return self._streamed

    def end_generation(self, final_text: str | None = None) -> GeneratedSpan | None:
        """Finish the running generation and return its span (``None`` when it wrote nothing).

        ``final_text``: the whole generated text as the job reported it; what the chunks missed is added (or, if
        it disagrees with them, it replaces them) within the same undo step.
        """
        if self._cursor is None:
            return None
        cursor = self._cursor
        if final_text is not None and final_text != self._streamed:
            if final_text.startswith(self._streamed):
                self._insert(final_text[len(self._streamed):])
            else:
                self._replace_generated(final_text)
        if self._end > self._start:
            self._mark += 1
            cursor.joinPreviousEditBlock()
            cursor.setPosition(self._start)
            cursor.setPosition(self._end, QTextCursor.MoveMode.KeepAnchor)
            marker = QTextCharFormat()
            marker.setProperty(GENERATED_PROPERTY, self._mark)
            self._marking = True  # a format change, reported as a replacement: not an edit of the spans
            try:
                cursor.mergeCharFormat(marker)  # a boundary in the undo history (see the module docstring)
                cursor.endEditBlock()
            finally:
                self._marking = False
        self._cursor = None
        self.setReadOnly(self._was_read_only)  # also restores the text interaction flags
        span = None
        if self._end > self._start:
            self._spans.append([self._start, self._end, self._data])
            text = self.text()
            span = GeneratedSpan(from_qt(text, self._start), from_qt(text, self._end), self._data)
        self._data, self._streamed = None, ""
        self._refresh()
        self.spans_changed.emit()
        return span

    def _insert(self, text: str) -> None:
        assert self._cursor is not None
        user = self.textCursor()
        anchor, position, had_selection = user.anchor(), user.position(), user.hasSelection()
        bar = self.verticalScrollBar()
        top, follow = bar.value(), not had_selection and position == self._end
        # the view follows the new text only if the person was watching it being written
        follow_view = follow and self.viewport().rect().intersects(self.cursorRect(user))
        point = self._end
        first_block_before = self.firstVisibleBlock().blockNumber()
        point_block = self.document().findBlock(point).blockNumber()
        cursor = self._cursor
        if self._end == self._start:
            cursor.beginEditBlock()
        else:
            cursor.joinPreviousEditBlock()
        cursor.setPosition(point)
        cursor.insertText(text)
        cursor.endEditBlock()
        added = cursor.position() - point
        self._end = cursor.position()

        def moved(p: int) -> int:
            return p + added if p > point or (p == point and follow) else p

        restored = QTextCursor(self.document())
        restored.setPosition(moved(anchor))
        restored.setPosition(moved(position), QTextCursor.MoveMode.KeepAnchor)
        if (restored.anchor(), restored.position()) != (self.textCursor().anchor(), self.textCursor().position()):
            self.setTextCursor(restored)
        if follow_view:
            self.ensureCursorVisible()
        else:  # keep the person's view where it was, counting lines added above it
            new_lines = text.count("\n") + text.count("\u2029")
            bar.setValue(top + (new_lines if point_block < first_block_before else 0))

    def _replace_generated(self, text: str) -> None:
        assert self._cursor is not None
        cursor = self._cursor
        if self._end == self._start:
            cursor.beginEditBlock()
        else:
            cursor.joinPreviousEditBlock()
        cursor.setPosition(self._start)
        cursor.setPosition(self._end, QTextCursor.MoveMode.KeepAnchor)
        cursor.insertText(text)
        cursor.endEditBlock()
        self._end = cursor.position()

    # -- spans ------------------------------------------------------------------------------------------------

    def generated_spans(self) -> list[GeneratedSpan]:
        """The generated spans (a running generation's included), in text order."""
        text = self.text()
        spans = list(self._spans)
        if self._cursor is not None and self._end > self._start:
            spans.append([self._start, self._end, self._data])
        return [GeneratedSpan(from_qt(text, s), from_qt(text, e), d) for s, e, d in sorted(spans, key=_first)]

    def set_highlight_generated(self, on: bool) -> None:
        """Show or hide the background on generated text."""
        self._highlight = bool(on)
        self._refresh()

    def highlights_generated(self) -> bool:
        return self._highlight

    @Slot(int, int, int)
    def _on_contents_change(self, position: int, removed: int, added: int) -> None:
        """Move the spans with an edit: text inserted at a span's end is not part of it; text that replaces part
        of a span is taken out of it; a span whose text is all gone is forgotten."""
        if not self._spans or self._marking:
            return
        delta = added - removed
        kept = []
        for start, end, data in self._spans:
            if start >= position + removed:
                start += delta
            elif start >= position:
                start = position + added
            if end >= position + removed and not (end == position and removed == 0):
                end += delta
            elif end > position:
                end = position
            if start < end:
                kept.append([start, end, data])
        changed = kept != self._spans
        self._spans = kept
        if changed:
            self._refresh()
            self.spans_changed.emit()

    def _refresh(self) -> None:
        selections = []
        if self._highlight:
            color = QColor(self.palette().highlight().color())
            color.setAlpha(45)
            spans = list(self._spans)
            if self._cursor is not None and self._end > self._start:
                spans.append([self._start, self._end, None])
            for start, end, _data in spans:
                selection = QTextEdit.ExtraSelection()
                selection.cursor = QTextCursor(self.document())
                selection.cursor.setPosition(start)
                selection.cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
                selection.format.setBackground(color)
                selections.append(selection)
        self.setExtraSelections(selections)


def _first(span: list[Any]) -> int:
    return span[0]
