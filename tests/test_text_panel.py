"""The text generator's panel (plugins/text/panel.py), driven as a person would, offscreen.

The panel talks to the window only through ``PanelHost``: these tests give it ``FakeHost``, a real QObject with
the host's signals, a real ``JsonPanelStorage`` in a temporary folder, and a ``submit`` that validates and records
what it is given; the tests then play the engine's part by emitting the job signals.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QTextCursor
from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QApplication, QComboBox, QPlainTextEdit, QWidget

from desktop.api import TextOutput, to_json
from desktop.testing.panel_host import RecordingPanelHost
from plugins.text import panel as panel_module
from plugins.text.document_editor import GENERATED_PROPERTY
from plugins.text.drafts import Provenance
from plugins.text.panel import DRAFT_KEY, PRESETS_KEY, TextPanel, create_panel, format_stops, parse_stops
from plugins.text.params import PRESETS, TextParams

PLUGIN_DIR = Path(panel_module.__file__).parent


class FakeHost(RecordingPanelHost):
    """The shared recording host, storing under this panel's generator id."""

    def __init__(self, root: Path) -> None:
        super().__init__(root, generator_id="text", model="tiny-gpt2")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path / "panels")


@pytest.fixture
def make_panel(qtbot, host):
    def make(**kwargs) -> TextPanel:
        kwargs.setdefault("autosave_ms", 60_000)  # tests drive autosave themselves unless they ask otherwise
        panel = TextPanel(host, **kwargs)
        qtbot.addWidget(panel)
        panel.resize(1200, 700)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    return make


@pytest.fixture
def panel(make_panel) -> TextPanel:
    return make_panel()


def type_into(qtbot, widget: QPlainTextEdit, text: str) -> None:
    widget.setFocus()
    qtbot.keyClicks(widget, text)


def put_cursor(editor: QPlainTextEdit, position: int, anchor: int | None = None) -> None:
    cursor = editor.textCursor()
    cursor.setPosition(position if anchor is None else anchor)
    if anchor is not None:
        cursor.setPosition(position, QTextCursor.MoveMode.KeepAnchor)
    editor.setTextCursor(cursor)


def finish(host: FakeHost, job: str, text: str, **metadata) -> None:
    meta = {"mode": "continue", "prompt_tokens": 5, "new_tokens": 3, "truncated_tokens": 0, "stopped_by": "eos"}
    host.job_finished.emit(job, [TextOutput(text=text, metadata={**meta, **metadata})])


def drop(widget: QWidget, path: Path) -> QDropEvent:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(20, 20), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event


# ------------------------------------------------------------------------------------- continue at cursor


def test_continue_writes_at_the_cursor_in_one_undo_step(qtbot, panel, host):
    editor = panel.editor
    type_into(qtbot, editor, "The keeper climbed. Then silence.")
    put_cursor(editor, len("The keeper climbed."))
    job = panel.generate()

    assert job == "job-1"
    sent = host.submitted[0]
    assert sent.mode == "continue" and sent.prompt == "The keeper climbed."
    assert (sent.temperature, sent.max_new_tokens) == (0.8, 200)
    assert panel.cancel_button.isEnabled() and not panel.generate_button.isEnabled()
    assert editor.isReadOnly()

    for chunk in (" The lamp", " flickered", ",\nthen held."):
        host.job_previewed.emit(job, chunk)
    host.job_previewed.emit("someone-elses-job", " NOT MINE")
    generated = " The lamp flickered,\nthen held."
    expected = "The keeper climbed." + generated + " Then silence."
    assert editor.text() == expected
    assert editor.textCursor().position() == len("The keeper climbed." + generated)  # it followed the text

    finish(host, job, generated, seed=4242)
    assert editor.text() == expected and not editor.isReadOnly()
    assert not panel.cancel_button.isEnabled() and panel.generate_button.isEnabled()
    assert "3 token" in panel.status.text()
    [span] = editor.generated_spans()
    assert (span.start, span.end) == (19, 19 + len(generated))
    provenance = panel.current_draft().provenance
    assert len(provenance) == 1
    record = provenance[0]
    assert (record.start, record.end, record.seed, record.job_id, record.model) == (19, 19 + len(generated), 4242,
                                                                                     "job-1", "tiny-gpt2")
    assert record.params == to_json(sent) and not record.partial

    # one Ctrl+Z takes the whole generation away, and only it
    editor.setFocus()
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert editor.text() == "The keeper climbed. Then silence."
    assert editor.generated_spans() == [] and panel.current_draft().provenance == []
    qtbot.keyClick(editor, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert editor.text() == expected


def test_typing_after_a_generation_is_its_own_undo_step(qtbot, panel, host):
    editor = panel.editor
    type_into(qtbot, editor, "Start.")
    job = panel.generate()
    host.job_previewed.emit(job, " Generated")
    host.job_previewed.emit(job, " words.")
    finish(host, job, " Generated words.")
    type_into(qtbot, editor, " Mine")  # right after the generated text
    assert editor.text() == "Start. Generated words. Mine"
    editor.undo()
    assert editor.text() == "Start. Generated words."
    editor.undo()
    assert editor.text() == "Start."
    # the span does not grow with what the person typed after it
    editor.redo()
    editor.redo()
    cursor = QTextCursor(editor.document())
    cursor.setPosition(len("Start. Gen"))
    assert cursor.charFormat().property(GENERATED_PROPERTY) is not None


def test_continue_after_a_selection_keeps_the_selection_and_the_view(qtbot, panel, host):
    editor = panel.editor
    lines = "\n".join(f"line {i}" for i in range(200))
    editor.setPlainText(lines)
    put_cursor(editor, 12, anchor=7)  # "1\nline" selected, from the end of line 0... to inside line 2
    job = panel.generate()
    assert host.submitted[0].prompt == lines[:12]
    editor.verticalScrollBar().setValue(50)  # the person scrolls down while it writes above
    seen = editor.firstVisibleBlock().text()
    assert seen == "line 50"
    for _ in range(5):
        host.job_previewed.emit(job, "[gen]\n")
    cursor = editor.textCursor()
    assert (cursor.anchor(), cursor.position()) == (7, 12)  # the selection did not swallow the new text
    assert editor.firstVisibleBlock().text() == seen  # the view shows what it showed
    finish(host, job, "[gen]\n" * 5)
    assert editor.text() == lines[:12] + "[gen]\n" * 5 + lines[12:]


def test_the_view_follows_the_new_text_only_while_the_person_watches_it(qtbot, panel, host):
    editor = panel.editor
    editor.setPlainText("\n".join(f"line {i}" for i in range(100)))
    put_cursor(editor, len(editor.text()))
    editor.ensureCursorVisible()
    job = panel.generate()
    for i in range(60):
        host.job_previewed.emit(job, f"\nnew {i}")
    assert editor.viewport().rect().contains(editor.cursorRect().center())  # the end is in view
    editor.verticalScrollBar().setValue(0)  # the person scrolls up to read the beginning
    for i in range(60):
        host.job_previewed.emit(job, f"\nmore {i}")
    assert editor.verticalScrollBar().value() == 0
    assert editor.textCursor().position() == len(editor.text())  # the cursor is still at the end
    finish(host, job, "".join(f"\nnew {i}" for i in range(60)) + "".join(f"\nmore {i}" for i in range(60)))
    assert editor.verticalScrollBar().value() == 0


def test_the_final_text_completes_what_the_chunks_missed(qtbot, panel, host):
    type_into(qtbot, panel.editor, "A")
    job = panel.generate()
    host.job_previewed.emit(job, "B")
    finish(host, job, "BCD")
    assert panel.editor.text() == "ABCD"
    panel.editor.undo()
    assert panel.editor.text() == "A"


def test_generated_text_is_highlighted_and_the_highlight_toggles(qtbot, panel, host):
    editor = panel.editor
    type_into(qtbot, editor, "Hello")
    job = panel.generate()
    host.job_previewed.emit(job, " world")
    assert len(editor.extraSelections()) == 1  # already while it streams
    finish(host, job, " world")
    [selection] = editor.extraSelections()
    assert (selection.cursor.selectionStart(), selection.cursor.selectionEnd()) == (5, 11)
    assert selection.format.background().color().alpha() < 100  # subtle
    qtbot.mouseClick(panel.highlight_box, Qt.MouseButton.LeftButton)
    assert editor.extraSelections() == []
    qtbot.mouseClick(panel.highlight_box, Qt.MouseButton.LeftButton)
    assert len(editor.extraSelections()) == 1


def test_spans_follow_the_persons_edits(qtbot, panel, host):
    editor = panel.editor
    type_into(qtbot, editor, "ab")
    job = panel.generate()
    host.job_previewed.emit(job, "GENERATED")
    finish(host, job, "GENERATED")
    put_cursor(editor, 0)
    type_into(qtbot, editor, "12")  # before the span: it moves
    assert [(s.start, s.end) for s in editor.generated_spans()] == [(4, 13)]
    put_cursor(editor, 13)
    type_into(qtbot, editor, "zz")  # at its end: not part of it
    assert [(s.start, s.end) for s in editor.generated_spans()] == [(4, 13)]
    put_cursor(editor, 10, anchor=4)
    qtbot.keyClick(editor, Qt.Key.Key_Delete)  # its first six characters
    assert editor.text() == "12abTEDzz"
    assert [(s.start, s.end) for s in editor.generated_spans()] == [(4, 7)]
    assert [(p.start, p.end) for p in panel.current_draft().provenance] == [(4, 7)]
    put_cursor(editor, 7, anchor=4)
    qtbot.keyClick(editor, Qt.Key.Key_Delete)
    assert editor.generated_spans() == [] and editor.extraSelections() == []


def test_cancel_keeps_what_was_written(qtbot, panel, host):
    panel.cancel()
    assert host.cancelled == []  # nothing running
    type_into(qtbot, panel.editor, "Begin:")
    job = panel.generate()
    host.job_previewed.emit(job, " half a")
    qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    assert host.cancelled == [job]
    host.job_cancelled.emit(job, [TextOutput(text=" half a sen", partial=True)])
    assert panel.editor.text() == "Begin: half a sen"
    assert panel.status.text().startswith("Cancelled.")
    [record] = panel.current_draft().provenance
    assert record.partial and (record.start, record.end) == (6, 17)
    assert not panel.cancel_button.isEnabled() and not panel.editor.isReadOnly()
    panel.cancel()
    assert host.cancelled == [job]


def test_a_failure_keeps_the_typed_text_and_shows_the_message(qtbot, panel, host):
    type_into(qtbot, panel.editor, "My own words")
    job = panel.generate()
    host.job_failed.emit(job, "Out of memory on the GPU.")
    assert panel.editor.text() == "My own words"
    assert panel.status.text() == "Out of memory on the GPU."
    assert panel.status.property("error") is True
    assert not panel.editor.isReadOnly() and panel.generate_button.isEnabled()
    assert panel.current_draft().provenance == []

    panel.set_mode("chat")
    type_into(qtbot, panel.chat.input, "A question kept")
    job = panel.generate()
    assert panel.chat.input_text() == ""
    host.job_failed.emit(job, "The model cannot chat.")
    assert panel.chat.input_text() == "A question kept"  # back in the box, to send again
    assert panel.chat.messages() == []
    assert panel.status.text() == "The model cannot chat."


def test_an_invalid_setting_is_shown_and_nothing_is_submitted(qtbot, panel, host):
    panel.stop_edit.setPlainText("\n".join(f"stop{i}" for i in range(20)))
    assert panel.generate() is None
    assert host.submitted == []
    assert "Stop sequences" in panel.status.text() and "at most 16" in panel.status.text()
    assert not panel.editor.isReadOnly()


def test_one_generation_at_a_time(qtbot, panel, host):
    job = panel.generate()
    assert panel.generate() is None
    assert "still writing" in panel.status.text()
    assert len(host.submitted) == 1
    assert panel.new_draft() is None and not panel.new_button.isEnabled() and not panel.draft_list.isEnabled()
    finish(host, job, "x")
    assert panel.generate() == "job-2"


def test_progress_follows_the_job(panel, host):
    job = panel.generate()
    host.job_started.emit(job)
    assert panel.status.text() == "Loading the model…"
    host.job_progressed.emit(job, 12, 200, "")
    assert panel.progress.text() == "12 / 200 tokens"
    host.job_progressed.emit("other", 1, 2, "not mine")
    assert panel.progress.text() == "12 / 200 tokens"
    finish(host, job, "", truncated_tokens=30)
    assert "30 tokens" in panel.status.text() and panel.progress.text() == ""


# ----------------------------------------------------------------------------------------------------- chat


def start_chat(qtbot, panel, host, *exchanges: tuple[str, str]) -> None:
    panel.set_mode("chat")
    for question, answer in exchanges:
        type_into(qtbot, panel.chat.input, question)
        qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
        job = f"job-{len(host.submitted)}"
        host.job_previewed.emit(job, answer)
        finish(host, job, answer, mode="chat")


def test_chat_sends_history_and_system_prompt_and_streams_the_reply(qtbot, panel, host):
    qtbot.mouseClick(panel.mode_group.button(1), Qt.MouseButton.LeftButton)
    assert panel.mode() == "chat" and panel.stack.currentWidget() is panel.chat
    type_into(qtbot, panel.chat.system_prompt_edit, "Be brief.")
    type_into(qtbot, panel.chat.input, "Hi there")
    job = panel.generate()
    sent = host.submitted[0]
    assert (sent.mode, sent.prompt, sent.history, sent.system_prompt) == ("chat", "Hi there", [], "Be brief.")
    assert panel.chat.input_text() == ""
    assert panel.chat.messages() == [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": ""}]
    host.job_previewed.emit(job, "Hel")
    host.job_previewed.emit(job, "lo!")
    assert panel.chat.messages()[-1] == {"role": "assistant", "content": "Hello!"}
    assert panel.chat.message_list.item(1).text().endswith("Hello!")
    finish(host, job, "Hello!", mode="chat", seed=7)

    type_into(qtbot, panel.chat.input, "And then?")
    qtbot.mouseClick(panel.chat.send_button, Qt.MouseButton.LeftButton)
    second = host.submitted[1]
    assert second.history == ["Hi there", "Hello!"] and second.prompt == "And then?"
    assert second.system_prompt == "Be brief."
    host.job_previewed.emit("job-2", "Then more.")
    finish(host, "job-2", "Then more.", mode="chat", seed=8)
    draft = panel.current_draft()
    assert draft.kind == "chat" and draft.system_prompt == "Be brief." and len(draft.messages) == 4
    assert [(p.start, p.end, p.seed) for p in draft.provenance] == [(1, 2, 7), (3, 4, 8)]


def test_regenerate_replaces_the_last_reply(qtbot, panel, host):
    start_chat(qtbot, panel, host, ("one", "first"), ("two", "second"))
    qtbot.mouseClick(panel.chat.regenerate_button, Qt.MouseButton.LeftButton)
    again = host.submitted[-1]
    assert (again.prompt, again.history) == (host.submitted[1].prompt, host.submitted[1].history)
    assert panel.chat.messages()[-1] == {"role": "assistant", "content": ""}
    host.job_previewed.emit("job-3", "second, better")
    finish(host, "job-3", "second, better", seed=3)
    assert [m["content"] for m in panel.chat.messages()] == ["one", "first", "two", "second, better"]
    assert [(p.start, p.job_id) for p in panel.current_draft().provenance] == [(1, "job-1"), (3, "job-3")]

    # a regeneration cancelled before it wrote anything gives the old reply back
    panel.regenerate()
    host.job_cancelled.emit("job-4", [])
    assert panel.chat.messages()[-1]["content"] == "second, better"
    assert [p.job_id for p in panel.current_draft().provenance] == ["job-1", "job-3"]


def test_edit_and_resend_truncates_the_conversation(qtbot, panel, host):
    start_chat(qtbot, panel, host, ("one", "first"), ("two", "second"), ("three", "third"))
    chat = panel.chat
    chat.message_list.setCurrentRow(1)
    assert not chat.edit_button.isEnabled()  # a reply cannot be edited
    rect = chat.message_list.visualItemRect(chat.message_list.item(2))
    qtbot.mouseClick(chat.message_list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert chat.edit_button.isEnabled()
    qtbot.mouseClick(chat.edit_button, Qt.MouseButton.LeftButton)
    assert chat.editing_index() == 2 and chat.input_text() == "two"
    assert chat.editing_label.isVisibleTo(panel) and chat.send_button.text() == "Resend"
    chat.input.selectAll()
    type_into(qtbot, chat.input, "TWO, edited")
    qtbot.mouseClick(chat.send_button, Qt.MouseButton.LeftButton)
    sent = host.submitted[-1]
    assert (sent.prompt, sent.history) == ("TWO, edited", ["one", "first"])
    assert [m["content"] for m in chat.messages()] == ["one", "first", "TWO, edited", ""]
    assert chat.editing_index() is None and chat.send_button.text() == "Send"
    finish(host, "job-4", "new second")
    assert [m["content"] for m in chat.messages()] == ["one", "first", "TWO, edited", "new second"]
    assert [p.job_id for p in panel.current_draft().provenance] == ["job-1", "job-4"]


def test_a_cancelled_reply_keeps_its_partial_text(qtbot, panel, host):
    panel.set_mode("chat")
    type_into(qtbot, panel.chat.input, "Tell me a story")
    job = panel.generate()
    host.job_previewed.emit(job, "Once")
    panel.cancel()
    assert host.cancelled == [job]
    host.job_cancelled.emit(job, [TextOutput(text="Once upon", partial=True)])
    assert panel.chat.messages()[-1] == {"role": "assistant", "content": "Once upon"}
    assert panel.current_draft().provenance[0].partial


# ------------------------------------------------------------------------------------------------- presets


def test_presets_fill_the_settings(qtbot, panel, host):
    combo = panel.preset_combo
    for name in ("precise", "creative"):
        combo.setCurrentIndex(combo.findData(name))
        combo.activated.emit(combo.currentIndex())  # as a person's choice does
        expected = PRESETS[name]
        assert panel.temperature.value() == pytest.approx(expected["temperature"])
        assert panel.top_p.value() == pytest.approx(expected["top_p"])
        assert panel.top_k.value() == expected["top_k"]
        assert panel.repetition_penalty.value() == pytest.approx(expected["repetition_penalty"])
    panel.generate()
    assert host.submitted[0].temperature == pytest.approx(1.1) and host.submitted[0].top_k == 0


def test_a_saved_preset_is_listed_and_reapplied_on_a_new_panel(qtbot, make_panel, host):
    first = make_panel()
    first.temperature.setValue(0.55)
    first.top_k.setValue(33)
    first.max_new_tokens.setValue(77)
    first.stop_edit.setPlainText("THE END\n\\n\\n")
    assert first.save_preset("My noir")
    assert not first.save_preset("balanced")  # a built-in name
    assert "My noir" in [first.preset_combo.itemData(i) for i in range(first.preset_combo.count())]
    assert host.storage.get(PRESETS_KEY)["My noir"]["stop"] == ["THE END", "\n\n"]

    second = make_panel()
    assert second.preset_names()[-1] == "My noir"
    second.apply_preset("precise")
    assert second.temperature.value() == pytest.approx(0.2)
    combo = second.preset_combo
    combo.setCurrentIndex(combo.findData("My noir"))
    combo.activated.emit(combo.currentIndex())
    assert (second.temperature.value(), second.top_k.value(), second.max_new_tokens.value()) == (0.55, 33, 77)
    assert parse_stops(second.stop_edit.toPlainText()) == ["THE END", "\n\n"]


def test_stop_sequences_text_form():
    stops = ["\n\n", "User:", "a\\nb", "tab\there"]
    assert parse_stops(format_stops(stops)) == stops
    assert parse_stops("one\n\ntwo\\n") == ["one", "two\n"]


# -------------------------------------------------------------------------------------------------- drafts


def test_autosave_saves_only_when_changed(qtbot, panel, host, monkeypatch):
    saves: list[str] = []
    original = panel.store.save
    monkeypatch.setattr(panel.store, "save", lambda draft, **kw: (saves.append(draft.id), original(draft, **kw)))
    assert panel.autosave() == 0 and saves == []  # a new, untouched draft is not written
    type_into(qtbot, panel.editor, "draft text")
    with qtbot.waitSignal(panel.draft_saved, timeout=5000):
        panel.autosave_timer.setInterval(5)  # let the timer itself fire
    assert len(saves) == 1
    draft_id = saves[0]
    assert panel.store.load(draft_id).text == "draft text"
    assert host.storage.get(DRAFT_KEY) == draft_id
    panel.autosave_timer.setInterval(60_000)
    assert panel.autosave() == 0 and len(saves) == 1  # nothing changed since
    type_into(qtbot, panel.editor, "!")
    assert panel.autosave() == 1 and saves == [draft_id, draft_id]
    assert panel.store.load(draft_id).text == "draft text!"


def test_the_last_draft_is_reopened_on_a_new_panel(qtbot, make_panel, host):
    first = make_panel()
    type_into(qtbot, first.editor, "A document")
    job = first.generate()
    host.job_previewed.emit(job, " continued")
    finish(host, job, " continued", seed=11)
    first.set_mode("chat")
    type_into(qtbot, first.chat.input, "hello")
    first.generate()
    finish(host, "job-2", "hi!")
    first.close()  # saves on close
    chat_id = first.current_draft().id

    second = make_panel()
    assert second.mode() == "chat" and second.current_draft().id == chat_id
    assert [m["content"] for m in second.chat.messages()] == ["hello", "hi!"]
    assert second.editor.text() == "A document continued"  # the newest document is there too
    [span] = second.editor.generated_spans()
    assert (span.start, span.end) == (10, 20) and isinstance(span.data, Provenance) and span.data.seed == 11
    assert len(second.draft_ids()) == 2


def test_new_open_and_delete_drafts(qtbot, panel, host):
    type_into(qtbot, panel.editor, "first document")
    first = panel.current_draft().id
    qtbot.mouseClick(panel.new_button, Qt.MouseButton.LeftButton)  # saves the first
    assert panel.editor.text() == "" and panel.current_draft().id != first
    assert panel.draft_ids() == [first]
    type_into(qtbot, panel.editor, "second document")
    panel.autosave()
    second = panel.current_draft().id
    assert panel.draft_ids() == [second, first]

    item = panel.draft_list.item(panel.draft_ids().index(first))
    qtbot.mouseClick(panel.draft_list.viewport(), Qt.MouseButton.LeftButton,
                     pos=panel.draft_list.visualItemRect(item).center())
    assert panel.current_draft().id == first and panel.editor.text() == "first document"
    panel.delete_draft(first)
    assert panel.draft_ids() == [second] and panel.editor.text() == "second document"


def test_a_damaged_draft_is_listed_and_does_not_break_the_panel(qtbot, make_panel, host):
    drafts = host.storage.directory / "drafts"
    drafts.mkdir(parents=True)
    (drafts / "abc123.json").write_text("{broken")
    host.storage.set(DRAFT_KEY, "abc123")
    panel = make_panel()
    assert panel.editor.text() == ""
    assert panel.draft_ids() == ["abc123.json.corrupt"]
    assert "damaged" in panel.draft_list.item(0).text()


def test_export_then_drop_the_file_applies_its_params(qtbot, make_panel, host, tmp_path):
    panel = make_panel()
    panel.apply_preset("precise")
    panel.stop_edit.setPlainText("END")
    type_into(qtbot, panel.editor, "Text to export")
    job = panel.generate()
    finish(host, job, " and more", seed=99)
    assert panel.export_draft(tmp_path / "story.md")
    assert panel.export_draft(tmp_path / "story.txt")
    assert (tmp_path / "story.json").is_file()

    for exported in ("story.md", "story.txt"):
        panel.apply_preset("creative")
        panel.stop_edit.clear()
        event = drop(panel, tmp_path / exported)
        assert event.isAccepted()
        assert panel.temperature.value() == pytest.approx(0.2) and panel.top_k.value() == 20
        assert parse_stops(panel.stop_edit.toPlainText()) == ["END"]
        assert "story" in panel.status.text()
        assert host.reused[-1][1:] == (99, "tiny-gpt2") and host.seed == 99  # the seed and model, through the host
    panel.apply_preset("creative")
    drop(panel.editor.viewport(), tmp_path / "story.md")  # onto the text: still params, not the path as text
    assert panel.temperature.value() == pytest.approx(0.2)
    assert panel.editor.text() == "Text to export and more"

    (tmp_path / "plain.md").write_text("# just notes\n")
    drop(panel, tmp_path / "plain.md")
    assert "no parameters" in panel.status.text()


def test_reuse_what_made_the_text_at_the_cursor_or_the_reply(qtbot, panel, host):
    panel.apply_preset("precise")
    type_into(qtbot, panel.editor, "Once")
    job = panel.generate()
    made = host.submitted[-1]
    finish(host, job, " upon a time", seed=7)
    panel.apply_preset("creative")
    put_cursor(panel.editor, 1)  # in the typed text: nothing generated there
    assert not panel.reuse_generation()
    assert "cursor in generated text" in panel.status.text() and host.reused == []
    put_cursor(panel.editor, len("Once upon"))
    panel.reuse_button.click()
    assert host.reused == [(to_json(made), 7, "tiny-gpt2")] and host.seed == 7
    assert panel.temperature.value() == pytest.approx(made.temperature)  # the settings came back
    assert "seed 7" in panel.status.text()

    panel.set_mode("chat")
    assert not panel.reuse_generation()  # no reply yet
    start_chat(qtbot, panel, host, ("Hi", "Hello there"))
    assert panel.reuse_generation()
    assert host.reused[-1][0]["mode"] == "chat" and host.reused[-1][0]["prompt"] == "Hi"


def test_apply_params_from_the_host(qtbot, panel, host):
    host.params_applied.emit(TextParams(prompt="Reused prompt", temperature=0.33, max_new_tokens=42, dtype="float32"))
    assert panel.editor.text() == "Reused prompt"  # the document was empty
    assert (panel.temperature.value(), panel.max_new_tokens.value()) == (0.33, 42)
    assert panel.dtype.currentData() == "float32"
    host.params_applied.emit({"prompt": "not over my text", "mode": "chat", "system_prompt": "Sys",
                              "history": ["q", "a"]})
    assert panel.mode() == "chat" and panel.editor.text() == "Reused prompt"
    assert panel.chat.messages() == [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    assert panel.chat.system_prompt() == "Sys" and panel.chat.input_text() == "not over my text"
    assert panel.temperature.value() == 0.8  # params are whole: what the dict leaves out is the default
    panel.apply_params("nonsense")
    assert "cannot be used" in panel.status.text()
    panel.temperature.setValue(0.33)
    panel.apply_params({"temperature": 99})
    assert "cannot be used" in panel.status.text() and panel.temperature.value() == 0.33


# ------------------------------------------------------------------------------------------------ the widget


def test_the_panel_draws_something(qtbot, panel, host):
    type_into(qtbot, panel.editor, "Some text to see.")
    qtbot.keyClick(panel.editor, Qt.Key.Key_Return)
    type_into(qtbot, panel.editor, "And a second line.")
    job = panel.generate()
    finish(host, job, " Generated.")
    image = panel.grab().toImage()
    assert image.width() >= 1000
    colors = {image.pixel(x, y) for x in range(0, image.width(), 13) for y in range(0, image.height(), 11)}
    assert len(colors) > 10


def test_inputs_and_buttons_are_named_for_assistive_technology(panel):
    checked = 0
    for widget in panel.findChildren(QWidget):
        if widget.objectName().startswith("qt_") or not isinstance(
                widget, (QAbstractSpinBox, QComboBox, QPlainTextEdit, QAbstractButton)):
            continue
        assert widget.objectName() and widget.accessibleName(), widget
        checked += 1
    assert checked >= 20


def test_create_panel_returns_a_text_panel(qtbot, host):
    panel = create_panel(host)
    qtbot.addWidget(panel)
    assert isinstance(panel, TextPanel) and panel.autosave_timer.interval() == 2000
    assert callable(panel.generate) and callable(panel.cancel)


@pytest.mark.parametrize("module", ["panel.py", "chat_view.py", "document_editor.py", "drafts.py"])
def test_the_panel_imports_only_the_plugin_api_from_the_host(module):
    tree = ast.parse((PLUGIN_DIR / module).read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module]
    for name in names:
        assert not name.startswith("desktop") or name == "desktop.api" or name.startswith("desktop.api."), name
        assert not name.startswith(("torch", "transformers")), name
        assert not name.startswith("plugins.text.generator"), name


def test_the_wheel_over_an_unfocused_preset_box_leaves_it_alone(qtbot, panel):
    from PySide6.QtGui import QWheelEvent

    combo = panel.preset_combo
    panel.editor.setFocus()
    centre = QPointF(combo.rect().center())
    event = QWheelEvent(centre, QPointF(combo.mapToGlobal(centre)), QPoint(), QPoint(0, -120), Qt.MouseButton.NoButton,
                        Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(combo, event)
    assert combo.currentIndex() == 0 and not event.isAccepted()  # left to the column's scrolling
