"""The chat view of the text panel: the conversation, the input box and the system prompt.

The view does not submit jobs: the panel asks it for a :class:`ChatRequest` (:meth:`ChatView.request_send`,
:meth:`~ChatView.request_regenerate`), submits it, and on success calls :meth:`~ChatView.begin_reply`, which
changes the conversation (drops what an edit or a regeneration replaces, adds the user's message and an empty
assistant reply). Chunks stream into that reply (:meth:`~ChatView.append_chunk`); :meth:`~ChatView.end_reply`
finishes it, and when nothing was written the conversation and the input box go back to what they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["ChatRequest", "ChatView", "history_of"]

Message = dict[str, str]


@dataclass(frozen=True)
class ChatRequest:
    """What to submit: the new user message, the earlier turns (alternating user/assistant), the system prompt,
    how many messages of the conversation stay before the new one (``keep``) and whether the message comes from
    the input box."""

    prompt: str
    history: list[str]
    system_prompt: str
    keep: int
    from_input: bool


def history_of(messages: list[Message]) -> list[str]:
    """The turns as ``TextParams.history`` wants them: user, assistant, user, … (a repeated role is joined to the
    turn before it, so that a conversation read from a file still alternates; a missing reply is empty)."""
    turns: list[str] = []
    for message in messages:
        expected = "user" if len(turns) % 2 == 0 else "assistant"
        if message["role"] == expected:
            turns.append(message["content"])
        elif turns:
            turns[-1] += "\n\n" + message["content"]
        else:  # the conversation starts with a reply: an empty user turn before it
            turns += ["", message["content"]]
    if len(turns) % 2:
        turns.append("")
    return turns


@dataclass
class _Snapshot:
    messages: list[Message]
    input_text: str
    editing: int | None


class ChatView(QWidget):
    """The conversation: a read-only list of messages, an input box, Send/Regenerate/Edit, a system prompt."""

    send_requested = Signal()
    """Send was pressed (the panel makes the request and submits it)."""
    regenerate_requested = Signal()
    """Regenerate was pressed."""
    changed = Signal()
    """The conversation or the system prompt changed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("chat_view")
        self._messages: list[Message] = []
        self._editing: int | None = None
        self._reply: int | None = None  # the index of the reply being written
        self._before: _Snapshot | None = None
        self._build()
        self._update_buttons()

    def _named(self, widget: QWidget, name: str, accessible: str) -> QWidget:
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        return widget

    def _build(self) -> None:
        tr = self.tr
        self.system_prompt_edit = QPlainTextEdit(self)
        self._named(self.system_prompt_edit, "system_prompt", tr("System prompt"))
        self.system_prompt_edit.setPlaceholderText(tr("Instructions the assistant follows (optional)…"))
        self.system_prompt_edit.setTabChangesFocus(True)
        self.system_prompt_edit.setMaximumHeight(70)
        self.message_list = QListWidget(self)
        self._named(self.message_list, "messages", tr("Conversation"))
        self.message_list.setWordWrap(True)
        self.message_list.setUniformItemSizes(False)
        self.message_list.setResizeMode(QListView.ResizeMode.Adjust)
        self.message_list.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.message_list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.message_list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.message_list.setSpacing(3)
        self.input = QPlainTextEdit(self)
        self._named(self.input, "chat_input", tr("Message"))
        self.input.setPlaceholderText(tr("Your message…"))
        self.input.setTabChangesFocus(True)
        self.input.setMaximumHeight(110)
        self.editing_label = QLabel(self)
        self._named(self.editing_label, "editing_label", tr("Editing"))
        self.editing_label.setWordWrap(True)
        self.editing_label.hide()
        self.send_button = QPushButton(tr("Send"), self)
        self._named(self.send_button, "send", tr("Send"))
        self.send_button.setToolTip(tr("Send the message (Ctrl+Enter)"))
        self.regenerate_button = QPushButton(tr("Regenerate"), self)
        self._named(self.regenerate_button, "regenerate", tr("Regenerate"))
        self.regenerate_button.setToolTip(tr("Write the last reply again"))
        self.edit_button = QPushButton(tr("Edit"), self)
        self._named(self.edit_button, "edit_message", tr("Edit the selected message"))
        self.edit_button.setToolTip(tr("Edit the selected message of yours and send it again; what followed it "
                                       "is dropped"))
        self.cancel_edit_button = QPushButton(tr("Stop editing"), self)
        self._named(self.cancel_edit_button, "cancel_edit", tr("Stop editing"))
        self.cancel_edit_button.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.edit_button)
        buttons.addWidget(self.cancel_edit_button)
        buttons.addStretch(1)
        buttons.addWidget(self.regenerate_button)
        buttons.addWidget(self.send_button)
        line = self.fontMetrics().lineSpacing()  # short enough for a 900×600 window: the boxes scroll
        self.system_prompt_edit.setMinimumHeight(2 * line + 12)
        self.input.setMinimumHeight(2 * line + 12)
        self.message_list.setMinimumHeight(3 * line + 12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        system_label = QLabel(tr("System prompt"), self)
        system_label.setBuddy(self.system_prompt_edit)
        layout.addWidget(system_label)
        layout.addWidget(self.system_prompt_edit)
        layout.addWidget(self.message_list, 1)
        layout.addWidget(self.editing_label)
        layout.addWidget(self.input)
        layout.addLayout(buttons)
        self.send_button.clicked.connect(self.send_requested)
        self.regenerate_button.clicked.connect(self.regenerate_requested)
        self.edit_button.clicked.connect(self._edit_selected)
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.message_list.itemDoubleClicked.connect(self._on_double_clicked)
        self.message_list.currentRowChanged.connect(self._on_row_changed)
        self.system_prompt_edit.textChanged.connect(self.changed)

    # -- the conversation -------------------------------------------------------------------------------------

    def messages(self) -> list[Message]:
        """A copy of the conversation."""
        return [dict(m) for m in self._messages]

    def system_prompt(self) -> str:
        return self.system_prompt_edit.toPlainText()

    def set_conversation(self, messages: list[Message], system_prompt: str = "") -> None:
        """Show another conversation (any reply being written is abandoned)."""
        self._messages = [{"role": m["role"], "content": m["content"]} for m in messages]
        self._reply = self._before = self._editing = None
        self.system_prompt_edit.blockSignals(True)
        self.system_prompt_edit.setPlainText(system_prompt)
        self.system_prompt_edit.blockSignals(False)
        self._render()
        self._show_editing()

    def input_text(self) -> str:
        return self.input.toPlainText()

    def set_input_text(self, text: str) -> None:
        self.input.setPlainText(text)

    def is_replying(self) -> bool:
        return self._reply is not None

    def reply_index(self) -> int | None:
        """The index of the reply being written."""
        return self._reply

    # -- requests ---------------------------------------------------------------------------------------------

    def request_send(self) -> ChatRequest | None:
        """The input box's message as a request (while editing, it replaces the edited message and what
        followed). ``None`` when the box is empty or a reply is being written."""
        text = self.input_text()
        if self._reply is not None or not text.strip():
            return None
        keep = self._editing if self._editing is not None else len(self._messages)
        return ChatRequest(text, history_of(self._messages[:keep]), self.system_prompt(), keep, True)

    def request_regenerate(self) -> ChatRequest | None:
        """The last user message again, replacing the reply that followed it. ``None`` when there is none."""
        if self._reply is not None:
            return None
        last_user = next((i for i in range(len(self._messages) - 1, -1, -1)
                          if self._messages[i]["role"] == "user"), None)
        if last_user is None:
            return None
        return ChatRequest(self._messages[last_user]["content"], history_of(self._messages[:last_user]),
                           self.system_prompt(), last_user, False)

    def begin_reply(self, request: ChatRequest) -> int:
        """The request was submitted: show it in the conversation and return the index of the (empty) reply."""
        self._before = _Snapshot(self.messages(), self.input_text(), self._editing)
        self._messages = self._messages[:request.keep] + [{"role": "user", "content": request.prompt},
                                                          {"role": "assistant", "content": ""}]
        self._reply = len(self._messages) - 1
        if request.from_input:
            self.input.clear()
        self._editing = None
        self._render()
        self._show_editing()
        self.message_list.scrollToBottom()
        self.changed.emit()
        return self._reply

    def append_chunk(self, text: str) -> None:
        """Add a streamed chunk to the reply being written."""
        if self._reply is None or not text:
            return
        self._messages[self._reply]["content"] += text
        self._render_row(self._reply)
        bar = self.message_list.verticalScrollBar()
        if bar.value() >= bar.maximum() - 4:
            self.message_list.scrollToBottom()
        self.changed.emit()

    def end_reply(self, final_text: str | None = None) -> int | None:
        """Finish the reply (``final_text``: the whole reply as the job reported it). Returns its index, or
        ``None`` when it is empty: the conversation and the input box are then as they were before it."""
        index, before = self._reply, self._before
        if index is None:
            return None
        self._reply = self._before = None
        if final_text is not None:
            self._messages[index]["content"] = final_text
        if not self._messages[index]["content"] and before is not None:
            self._messages = before.messages
            if not self.input_text():
                self.set_input_text(before.input_text)
            self._editing = before.editing
            index = None
        self._render()
        self._show_editing()
        self.changed.emit()
        return index

    # -- editing an earlier message ---------------------------------------------------------------------------

    def edit_message(self, index: int) -> bool:
        """Put one of the user's messages in the input box; Send then resends it in its place, dropping what
        followed."""
        if self._reply is not None or not 0 <= index < len(self._messages) or \
                self._messages[index]["role"] != "user":
            return False
        self._editing = index
        self.set_input_text(self._messages[index]["content"])
        self._show_editing()
        self.input.setFocus(Qt.FocusReason.OtherFocusReason)
        return True

    @Slot()
    def cancel_edit(self) -> None:
        """Stop editing (the input box is emptied)."""
        if self._editing is not None:
            self._editing = None
            self.input.clear()
            self._show_editing()

    def editing_index(self) -> int | None:
        return self._editing

    @Slot()
    def _edit_selected(self) -> None:
        self.edit_message(self.message_list.currentRow())

    @Slot(QListWidgetItem)
    def _on_double_clicked(self, item: QListWidgetItem) -> None:
        self.edit_message(self.message_list.row(item))

    @Slot(int)
    def _on_row_changed(self, _row: int) -> None:
        self._update_buttons()

    def _show_editing(self) -> None:
        editing = self._editing is not None
        if editing:
            self.editing_label.setText(self.tr("Editing message %1: Send replaces it and drops what followed.")
                                       .replace("%1", str((self._editing or 0) + 1)))
        self.editing_label.setVisible(editing)
        self.cancel_edit_button.setVisible(editing)
        self.send_button.setText(self.tr("Resend") if editing else self.tr("Send"))
        self._update_buttons()

    def _update_buttons(self) -> None:
        idle = self._reply is None
        row = self.message_list.currentRow()
        self.send_button.setEnabled(idle)
        self.regenerate_button.setEnabled(idle and any(m["role"] == "user" for m in self._messages))
        self.edit_button.setEnabled(idle and 0 <= row < len(self._messages)
                                    and self._messages[row]["role"] == "user")

    # -- rendering --------------------------------------------------------------------------------------------

    def _render(self) -> None:
        self.message_list.clear()
        for index in range(len(self._messages)):
            self.message_list.addItem(QListWidgetItem())
            self._render_row(index)
        self._update_buttons()

    def _render_row(self, index: int) -> None:
        item = self.message_list.item(index)
        if item is None:
            return
        message = self._messages[index]
        user = message["role"] == "user"
        name = self.tr("You") if user else self.tr("Assistant")
        content = message["content"] or ("…" if index == self._reply else "")
        item.setText(f"{name}\n{content}")
        item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{name}: {content}")
        item.setData(Qt.ItemDataRole.UserRole, message["role"])
        color = QColor(self.palette().highlight().color())
        color.setAlpha(28 if user else 0)
        item.setBackground(color)
