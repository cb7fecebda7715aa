"""The text generator's own panel: continue a document at the cursor, or chat; drafts, presets, provenance.

Talks to the window only through :class:`desktop.api.PanelHost`: ``submit``/``cancel``, ``current_model``,
``storage`` (drafts under ``<storage.directory>/drafts``; the user's presets under :data:`PRESETS_KEY`, the last
sampling settings under :data:`SETTINGS_KEY`, the draft open last under :data:`DRAFT_KEY`) and the host's job
signals, followed for the one job this panel is running (a :class:`~desktop.api.widgets.JobFollower`). The sampling
settings and the load options are the host's :class:`~desktop.api.widgets.ParamsForm`. Streamed text chunks
(``job_previewed``) go into the document at the insertion point or into the chat's reply as they come.

Every text generator shares it: its params type is :class:`~plugins.text.params.TextParamsBase` plus the generator's
own load options, which the panel shows below the sampling settings (``text.transformers``: the number format;
``text.llamacpp``: threads and GPU layers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QRect, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QCloseEvent, QHideEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QStyle,
    QStyleOptionComboBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import PanelHost, ParamError, StudioloError, TextOutput, from_json, schema, to_json, validate
from desktop.api.widgets import FileDropMixin, JobFollower, ParamsForm
from plugins.text.chat_view import ChatRequest, ChatView
from plugins.text.document_editor import DocumentEditor, GeneratedSpan, from_qt
from plugins.text.drafts import (
    KINDS,
    Draft,
    DraftError,
    DraftInfo,
    DraftStore,
    Provenance,
    export_markdown,
    export_text,
    generation_from_export,
)
from plugins.text.params import PRESETS, TextParams, TextParamsBase

log = logging.getLogger(__name__)

DRAFT_KEY = "last_draft"
"""``host.storage`` key: the id of the draft open last."""
PRESETS_KEY = "presets"
"""``host.storage`` key: the user's presets, ``{name: {setting: value}}``."""
SETTINGS_KEY = "last_settings"
"""``host.storage`` key: the sampling settings of the last job submitted."""
SAMPLING = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "stop")
"""The sampling settings (a preset holds them)."""
SAMPLING_FORM_FIELDS = ("max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty")
"""The sampling settings shown by the panel's form (the stop sequences have an editor of their own)."""
LOAD_FIELDS = ("dtype",)
"""``text.transformers``' load options, shown by the panel's second form (another generator passes its own)."""
MODES = ("continue", "chat")
KIND_OF_MODE = {"continue": "document", "chat": "chat"}
MODE_OF_KIND = {"document": "continue", "chat": "chat"}
EXPORT_SUFFIXES = (".md", ".txt", ".json")


def parse_stops(text: str) -> list[str]:
    """Stop sequences typed one per line; ``\\n``, ``\\t`` and ``\\\\`` stand for a newline, a tab, a backslash."""
    out = []
    for line in text.splitlines():
        if line:
            out.append(line.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\"))
    return out


def format_stops(stops: list[str]) -> str:
    """The inverse of :func:`parse_stops`."""
    return "\n".join(s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t") for s in stops)


def _mark_error(label: QLabel, error: bool) -> None:
    """Draw ``label`` in the host theme's error colour, or not: the theme styles widgets whose ``error`` property is
    true (desktop/ui/theme.py), legible in light and dark."""
    label.setProperty("error", error)
    label.style().unpolish(label)
    label.style().polish(label)


class _VerticalScrollArea(QScrollArea):
    """A scroll area that scrolls only up and down: never narrower than its widget's minimum width and a vertical
    scroll bar (so nothing is cut at the side)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def setWidget(self, widget: QWidget) -> None:  # noqa: N802 (Qt)
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # its minimum width may have changed: so has ours
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        hint = super().minimumSizeHint()
        widget = self.widget()
        if widget is None:
            return hint
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
        return QSize(widget.minimumSizeHint().width() + bar + 2 * self.frameWidth(), hint.height())


class _WholeTextCombo(QComboBox):
    """A combo box never narrower than its longest item's text, its frame and arrow added (the style's own hint
    under a style sheet let the layout cut "Choose a preset…" to "Choose a")."""

    def minimumSizeHint(self) -> QSize:  # noqa: N802 (Qt)
        hint = super().minimumSizeHint()
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.rect = QRect(0, 0, 1000, max(1, hint.height()))
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        text = max((self.fontMetrics().horizontalAdvance(self.itemText(i)) for i in range(self.count())), default=0)
        return QSize(max(hint.width(), text + 1000 - field.width()), hint.height())

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt)
        return super().sizeHint().expandedTo(self.minimumSizeHint())


@dataclass
class _Job:
    id: str
    kind: str  # "document" or "chat"
    provenance: Provenance
    chat_provenance: list[Provenance] = field(default_factory=list)  # to restore if the reply comes to nothing


class TextPanel(FileDropMixin, QWidget):
    """The text generators' panel. ``generate()``/``cancel()`` are what the window's Ctrl+Enter and Esc call.

    ``autosave_ms``: how often changed drafts are saved (they are also saved on close and when another draft is
    opened). ``params_type``: the generator's params (a :class:`TextParamsBase` subclass); ``load_fields``: which
    of its load options the panel shows.
    """

    draft_saved = Signal(str)
    """A draft was written (its id)."""

    def __init__(self, host: PanelHost, *, autosave_ms: int = 2000, parent: QWidget | None = None,
                 params_type: type[TextParamsBase] = TextParams, load_fields: tuple[str, ...] = LOAD_FIELDS) -> None:
        super().__init__(parent)
        self.setObjectName("text_panel")
        self.host = host
        self.params_type = params_type
        """The generator's params: what :meth:`params` builds and reused params are read as."""
        self.load_fields = tuple(load_fields)
        """The load options shown (kept with the sampling settings)."""
        self.store = DraftStore(host.storage.directory / "drafts")
        self._fields = {f.name: f for f in schema(params_type)}
        self._drafts: dict[str, Draft] = {}
        self._dirty: set[str] = set()
        self._chat_provenance: list[Provenance] = []
        self._infos: list[DraftInfo] = []  # the draft list's rows
        self._job: _Job | None = None
        self._loading = False
        self.follower = JobFollower(host, self)
        """Follows the job this panel is running."""
        self._build()
        self.setAcceptDrops(True)
        for widget in (self.editor.viewport(), self.chat.input.viewport(), self.chat.message_list.viewport(),
                       self.chat.system_prompt_edit.viewport()):
            widget.installEventFilter(self)  # a dropped export is for the panel, not text for the box
        for event in ("queued", "started", "progressed", "previewed", "finished", "failed", "cancelled"):
            getattr(self.follower, event).connect(getattr(self, f"_on_{event}"))
        params_applied = getattr(host, "params_applied", None)
        if params_applied is not None:
            params_applied.connect(self.apply_params)
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setObjectName("autosave_timer")
        self.autosave_timer.setInterval(max(1, autosave_ms))
        self.autosave_timer.timeout.connect(self.autosave)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.autosave)
        self._restore()
        self.autosave_timer.start()

    # -- building --------------------------------------------------------------------------------------------

    def _named(self, widget: QWidget, name: str, accessible: str) -> QWidget:
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        field = self._fields.get(name)
        if field is not None and field.spec.help:
            widget.setToolTip(field.spec.help)
        return widget

    def _button(self, text: str, name: str, tip: str = "") -> QPushButton:
        button = QPushButton(text, self)
        self._named(button, name, text.rstrip("…"))
        button.setToolTip(tip)
        return button

    def _build(self) -> None:
        tr = self.tr
        # drafts
        self.draft_list = QListWidget(self)
        self._named(self.draft_list, "drafts", tr("Drafts"))
        self.new_button = QToolButton(self)  # tool buttons: as narrow as their text, the drafts fit at 900 px
        self.new_button.setText(tr("New"))
        self._named(self.new_button, "new_draft", tr("New"))
        self.new_button.setToolTip(tr("Start a new draft"))
        self.delete_button = QToolButton(self)
        self.delete_button.setText(tr("Delete"))
        self._named(self.delete_button, "delete_draft", tr("Delete"))
        self.delete_button.setToolTip(tr("Delete the selected draft"))
        for button in (self.new_button, self.delete_button):
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.export_button = QToolButton(self)  # one button with a menu: the drafts stay narrow enough at 900 px
        self.export_button.setText(tr("Export"))
        self._named(self.export_button, "export_draft", tr("Export the draft"))
        self.export_button.setToolTip(tr("Export the draft as Markdown or plain text, with where the generated "
                                         "text came from"))
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.export_button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        export_menu = QMenu(self.export_button)
        self.export_md_action = export_menu.addAction(tr("Markdown (.md)…"))
        self.export_md_action.setToolTip(tr("Export as Markdown, with where the generated text came from"))
        self.export_txt_action = export_menu.addAction(tr("Plain text (.txt + .json)…"))
        self.export_txt_action.setToolTip(tr("Export as plain text, with a .json file of where it came from"))
        self.export_button.setMenu(export_menu)
        drafts = QWidget(self)
        drafts_layout = QVBoxLayout(drafts)
        drafts_layout.setContentsMargins(0, 0, 0, 0)
        drafts_layout.addWidget(QLabel(tr("Drafts"), self))
        drafts_layout.addWidget(self.draft_list, 1)
        drafts_buttons = QGridLayout()  # New, Delete / Export: narrow enough at 900 px, short enough at 600
        drafts_buttons.addWidget(self.new_button, 0, 0)
        drafts_buttons.addWidget(self.delete_button, 0, 1)
        drafts_buttons.addWidget(self.export_button, 1, 0, 1, 2)
        drafts_layout.addLayout(drafts_buttons)
        # mode and the two views
        self.mode_box = QFrame(self)
        self._named(self.mode_box, "mode", tr("Mode"))
        self.mode_group = QButtonGroup(self)
        mode_layout = QHBoxLayout(self.mode_box)
        mode_layout.setContentsMargins(0, 0, 0, 0)
        for index, (mode, text) in enumerate((("continue", tr("Continue")), ("chat", tr("Chat")))):
            button = QRadioButton(text, self.mode_box)
            self._named(button, f"mode_{mode}", text)
            self.mode_group.addButton(button, index)
            mode_layout.addWidget(button)
        self.highlight_box = QCheckBox(tr("Highlight generated text"), self)
        self._named(self.highlight_box, "highlight_generated", tr("Highlight generated text"))
        self.highlight_box.setChecked(True)
        mode_layout.addStretch(1)  # the highlight box sits with the settings: the centre stays narrow enough at 900 px
        self.mode_group.button(0).setChecked(True)
        self.editor = DocumentEditor(self)
        self.chat = ChatView(self)
        self.stack = QStackedWidget(self)
        self.stack.setObjectName("views")
        self.stack.addWidget(self.editor)
        self.stack.addWidget(self.chat)
        center = QWidget(self)
        center_layout = QVBoxLayout(center)
        center_layout.setContentsMargins(0, 0, 0, 0)
        center_layout.addWidget(self.mode_box)
        center_layout.addWidget(self.stack, 1)
        # settings
        self.preset_combo = _WholeTextCombo(self)
        self._named(self.preset_combo, "preset", tr("Preset"))
        self.preset_combo.setToolTip(tr("Fill the sampling settings from a preset"))
        self.save_preset_button = self._button(tr("Save preset…"), "save_preset",
                                               tr("Keep the sampling settings as a preset of your own"))
        # never narrower than its items (it was cut to "Choose a"); the button under it, not beside it
        self.preset_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        presets = QVBoxLayout()
        presets.addWidget(self.preset_combo)
        presets.addWidget(self.save_preset_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.sampling_form = ParamsForm(self.params_type, self, fields=SAMPLING_FORM_FIELDS, scrollable=False)
        self.sampling_form.setObjectName("sampling")
        field = self.sampling_form.field_widget
        self.max_new_tokens, self.temperature, self.top_p = field("max_new_tokens"), field("temperature"), \
            field("top_p")
        self.top_k, self.repetition_penalty = field("top_k"), field("repetition_penalty")
        self.top_k.setSpecialValueText(tr("No limit"))
        self.stop_edit = QPlainTextEdit(self)
        self._named(self.stop_edit, "stop", tr("Stop sequences"))
        self.stop_edit.setPlaceholderText(tr("One per line; \\n for a newline"))
        self.stop_edit.setTabChangesFocus(True)
        self.stop_edit.setMaximumHeight(70)
        self.load_form = ParamsForm(self.params_type, self, fields=self.load_fields, scrollable=False)
        self.load_form.setObjectName("load_options")
        self.dtype = self._load_widget("dtype")  # text.transformers: the number format
        if self.dtype is not None:
            self.dtype.setItemText(self.dtype.findData("auto"), tr("Automatic"))
        self.threads = self._load_widget("threads")  # text.llamacpp: 0 threads is automatic, -1 GPU layers all
        if self.threads is not None:
            self.threads.setSpecialValueText(tr("Automatic"))
        self.gpu_layers = self._load_widget("gpu_layers")
        if self.gpu_layers is not None:
            self.gpu_layers.setSpecialValueText(tr("All"))
        form = QFormLayout()
        form.addRow(tr("Preset"), presets)
        form.addRow(self.sampling_form)
        form.addRow(tr("Stop sequences"), self.stop_edit)
        form.addRow(self.load_form)
        self.adapter_chooser = None  # text.transformers: a LoRA adapter (plugins/text/adapter_chooser.py)
        if "adapter" in getattr(self.params_type, "__dataclass_fields__", {}):
            from plugins.text.adapter_chooser import AdapterChooser

            self.adapter_chooser = AdapterChooser(self.host, self)
            form.addRow(tr("Adapter"), self.adapter_chooser)
        self.generate_button = self._button(tr("Generate"), "generate", tr("Generate (Ctrl+Enter)"))
        self.cancel_button = self._button(tr("Cancel"), "cancel", tr("Cancel (Esc)"))
        self.cancel_button.setEnabled(False)
        self.reuse_button = QToolButton(self)  # in the mode row: the columns stay narrow and short enough at 900×600
        self.reuse_button.setText(tr("Reuse"))
        self._named(self.reuse_button, "reuse_generation", tr("Reuse what made this"))
        self.reuse_button.setToolTip(tr(
            "Reuse what made this: the settings, seed and model that wrote the text at the cursor (in a chat: the "
            "selected reply, else the last). Generate after the same text then writes the same again."))
        mode_layout.addWidget(self.reuse_button)
        self.progress = QLabel(self)
        self._named(self.progress, "progress", tr("Progress"))
        self.status = QLabel(self)
        self._named(self.status, "status", tr("Status"))
        self.status.setWordWrap(True)
        fields = QWidget(self)
        fields_layout = QVBoxLayout(fields)
        fields_layout.setContentsMargins(0, 0, 0, 0)
        fields_layout.addLayout(form)
        fields_layout.addWidget(self.highlight_box)
        fields_layout.addStretch(1)
        self.settings_scroll = _VerticalScrollArea(self)  # a short window scrolls the settings; buttons stay in view
        self.settings_scroll.setObjectName("settings_scroll")
        self.settings_scroll.setWidget(fields)
        settings = QWidget(self)
        settings_layout = QVBoxLayout(settings)
        settings_layout.setContentsMargins(0, 0, 0, 0)
        settings_layout.addWidget(self.settings_scroll, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        settings_layout.addLayout(buttons)
        settings_layout.addWidget(self.progress)
        settings_layout.addWidget(self.status)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        for widget in (drafts, center, settings):
            splitter.addWidget(widget)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([200, 700, 300])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        # wiring
        self.mode_group.idToggled.connect(self._on_mode_toggled)
        self.highlight_box.toggled.connect(self.editor.set_highlight_generated)
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.cancel_button.clicked.connect(self.cancel)
        self.reuse_button.clicked.connect(self.reuse_generation)
        self.chat.send_requested.connect(self._on_generate_clicked)
        self.chat.regenerate_requested.connect(self.regenerate)
        self.editor.textChanged.connect(self._on_document_changed)
        self.editor.spans_changed.connect(self._on_document_changed)
        self.chat.changed.connect(self._on_chat_changed)
        self.preset_combo.activated.connect(self._on_preset_activated)
        self.save_preset_button.clicked.connect(self._ask_preset_name)
        self.draft_list.itemActivated.connect(self._on_draft_activated)
        self.draft_list.itemClicked.connect(self._on_draft_activated)
        self.new_button.clicked.connect(self._on_new_clicked)
        self.delete_button.clicked.connect(self._on_delete_clicked)
        self.export_md_action.triggered.connect(self._on_export_md_clicked)
        self.export_txt_action.triggered.connect(self._on_export_txt_clicked)

    def _load_widget(self, name: str) -> Any:
        """The load-option widget ``name``, or None where this generator has no such option or it is not shown."""
        return self.load_form.field_widget(name) if name in self.load_fields else None

    # -- mode and params --------------------------------------------------------------------------------------

    def mode(self) -> str:
        """``continue`` (the document editor) or ``chat``."""
        return MODES[max(0, self.mode_group.checkedId())]

    def set_mode(self, mode: str) -> None:
        if mode in MODES:
            self.mode_group.button(MODES.index(mode)).setChecked(True)

    @Slot(int, bool)
    def _on_mode_toggled(self, index: int, checked: bool) -> None:
        if checked:
            self.stack.setCurrentIndex(index)
            self.highlight_box.setVisible(MODES[index] == "continue")
            self.generate_button.setVisible(MODES[index] == "continue")  # the chat has its own Send
            self._remember_current()

    def settings(self) -> dict[str, Any]:
        """The sampling settings and the load options the widgets hold. Raises ``ParamError`` for an invalid one
        (marked in the form)."""
        adapter = {"adapter": self.adapter_chooser.value()} if self.adapter_chooser is not None else {}
        return {**self.sampling_form.values(), "stop": parse_stops(self.stop_edit.toPlainText()),
                **self.load_form.values(), **adapter}

    def apply_settings(self, values: Mapping[str, Any]) -> None:
        """Set the sampling settings present in ``values`` (a preset, or params as JSON); a value that does not
        fit (from a preset another version wrote) is left out."""
        for form in (self.sampling_form, self.load_form):
            for name in form.field_names():
                if name in values:
                    try:
                        form.set_values({name: values[name]})
                    except ParamError as exc:
                        log.info("setting %s left as it was: %s", name, exc)
        if self.adapter_chooser is not None and isinstance(values.get("adapter"), str):
            self.adapter_chooser.set_value(values["adapter"])
        stop = values.get("stop")
        if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            self.stop_edit.setPlainText(format_stops(stop))

    def panel_state(self) -> dict[str, Any] | None:
        """The settings as they are now: the window keeps them when it closes (edits not used in a job yet
        included) and gives them to :meth:`restore_panel_state` on the next start (the text is kept in its
        draft). None while one is invalid."""
        try:
            return {"settings": to_json(self.params())}
        except ParamError:
            return None

    def restore_panel_state(self, state: Mapping[str, Any]) -> None:
        """Show the settings :meth:`panel_state` gave (one that no longer fits is left as it is)."""
        settings = state.get("settings")
        if isinstance(settings, Mapping):
            self.apply_settings(settings)

    def params(self, **values: Any) -> Any:
        """The settings as params (of :attr:`params_type`), with ``values`` (prompt, mode, system prompt, history)
        on top (not validated)."""
        return self.params_type(**{**self.settings(), **values})

    @Slot(object)
    def apply_params(self, params: object) -> None:
        """Reuse parameters: the settings and the mode always; the prompt, history and system prompt only where
        the document or the chat is still empty (never over what was written)."""
        try:
            p = self._coerce(params)
        except (StudioloError, TypeError, ValueError) as exc:
            self._show_error(self.tr("These parameters cannot be used here: %1").replace("%1", str(exc)))
            return
        self.apply_settings(to_json(p))
        self.set_mode(p.mode)
        if self._job is not None:
            return
        if p.mode == "continue" and not self.editor.text() and p.prompt:
            self.editor.setPlainText(p.prompt)
        elif p.mode == "chat" and not self.chat.messages():
            pairs = list(zip(p.history[::2], p.history[1::2], strict=False))  # an unanswered last turn: left out
            messages = [{"role": r, "content": c} for u, a in pairs for r, c in (("user", u), ("assistant", a))]
            self.chat.set_conversation(messages, p.system_prompt)
            if not self.chat.input_text():
                self.chat.set_input_text(p.prompt)
            self._on_chat_changed()

    def _coerce(self, params: object) -> Any:
        if isinstance(params, self.params_type):
            return params
        if isinstance(params, Mapping):
            return from_json(self.params_type, params)
        if is_dataclass(params) and not isinstance(params, type):
            return from_json(self.params_type, to_json(params))
        raise TypeError(f"not text parameters: {type(params).__name__}")

    # -- presets ----------------------------------------------------------------------------------------------

    def user_presets(self) -> dict[str, dict[str, Any]]:
        """The presets the user saved (from ``host.storage``)."""
        data = self.host.storage.get(PRESETS_KEY, {})
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)} \
            if isinstance(data, dict) else {}

    def preset_names(self) -> list[str]:
        """The built-in presets, then the user's."""
        return list(PRESETS) + sorted(self.user_presets())

    def apply_preset(self, name: str) -> bool:
        """Fill the settings from a preset (the user's own first)."""
        values = self.user_presets().get(name) or PRESETS.get(name)
        if values is None:
            return False
        self.apply_settings(values)
        index = self.preset_combo.findData(name)
        if index >= 0:
            self.preset_combo.setCurrentIndex(index)
        self._show_status(self.tr("Preset %1 applied.").replace("%1", name))
        return True

    def save_preset(self, name: str) -> bool:
        """Keep the sampling settings as the user's preset ``name`` (not a built-in name)."""
        name = name.strip()
        if not name or name in PRESETS:
            self._show_error(self.tr("Choose a name that is not a built-in preset's."))
            return False
        try:
            settings = self.settings()
        except ParamError as exc:
            self._show_error(self.tr("Could not keep the preset: %1").replace("%1", str(exc)))
            return False
        presets = self.user_presets()
        presets[name] = {key: settings[key] for key in SAMPLING}
        try:
            self.host.storage.set(PRESETS_KEY, presets)
        except (OSError, TypeError, ValueError) as exc:
            self._show_error(self.tr("Could not keep the preset: %1").replace("%1", str(exc)))
            return False
        self._fill_presets(select=name)
        self._show_status(self.tr("Preset %1 saved.").replace("%1", name))
        return True

    def _fill_presets(self, select: str | None = None) -> None:
        self.preset_combo.blockSignals(True)
        self.preset_combo.clear()
        self.preset_combo.addItem(self.tr("Choose a preset…"), None)
        names = {"creative": self.tr("Creative"), "balanced": self.tr("Balanced"), "precise": self.tr("Precise")}
        for name in PRESETS:
            self.preset_combo.addItem(names.get(name, name), name)
        user = sorted(self.user_presets())
        if user:
            self.preset_combo.insertSeparator(self.preset_combo.count())
        for name in user:
            self.preset_combo.addItem(name, name)
        self.preset_combo.setCurrentIndex(max(0, self.preset_combo.findData(select)) if select else 0)
        self.preset_combo.blockSignals(False)

    @Slot(int)
    def _on_preset_activated(self, index: int) -> None:
        name = self.preset_combo.itemData(index)
        if isinstance(name, str):
            self.apply_preset(name)

    @Slot()
    def _ask_preset_name(self) -> None:  # never called by tests: opens a modal dialog
        name, ok = QInputDialog.getText(self, self.tr("Save preset"), self.tr("Name of the preset:"))
        if ok:
            self.save_preset(name)

    # -- generating -------------------------------------------------------------------------------------------

    @Slot()
    def _on_generate_clicked(self) -> None:
        self.generate()

    def generate(self) -> str | None:
        """Continue the document at the cursor, or send the chat's message; return the job id, or None (the
        reason is shown)."""
        if self._refuse_while_running():
            return None
        if self.mode() == "chat":
            request = self.chat.request_send()
            if request is None:
                self._show_error(self.tr("Type a message first."))
                return None
            return self._submit_chat(request)
        submitted = self._submit(prompt=self.editor.text_before_insertion(), mode="continue")
        if submitted is None:
            return None
        job_id, params = submitted
        provenance = self._new_provenance(job_id, params, 0)
        self._job = _Job(job_id, "document", provenance)
        self.editor.begin_generation(provenance)
        self._started()
        return job_id

    @Slot()
    def regenerate(self) -> str | None:
        """Chat: write the last reply again (the same history is submitted)."""
        if self._refuse_while_running():
            return None
        request = self.chat.request_regenerate()
        if request is None:
            self._show_error(self.tr("There is no message to answer again."))
            return None
        return self._submit_chat(request)

    def _submit_chat(self, request: ChatRequest) -> str | None:
        submitted = self._submit(prompt=request.prompt, mode="chat", system_prompt=request.system_prompt,
                                 history=request.history)
        if submitted is None:
            return None
        job_id, params = submitted
        before = list(self._chat_provenance)
        index = self.chat.begin_reply(request)
        self._chat_provenance = [p for p in self._chat_provenance if p.start < request.keep]
        self._job = _Job(job_id, "chat", self._new_provenance(job_id, params, index), before)
        self._started()
        return job_id

    def _submit(self, **values: Any) -> tuple[str, TextParamsBase] | None:
        """Submit the settings with ``values`` on top; the job id and the params submitted, or None (the reason
        is shown)."""
        self._show_status("")
        try:
            params = validate(self.params(**values))
            job_id = self.follower.submit(params)
        except ParamError as exc:
            widget = self.findChild(QWidget, exc.field)
            label = widget.accessibleName() if widget is not None else exc.field
            self._show_error(f"{label}: {exc.allowed}." + (f"\n{exc.hint}" if exc.hint else ""))
            return None
        except (StudioloError, OSError) as exc:
            self._show_error(str(exc))
            return None
        try:
            self.host.storage.set(SETTINGS_KEY, {k: v for k, v in to_json(params).items()
                                                 if k in SAMPLING or k in self.load_fields})
        except (OSError, TypeError, ValueError):
            log.warning("could not keep the text panel's settings", exc_info=True)
        return job_id, params

    def _new_provenance(self, job_id: str, params: TextParamsBase, index: int) -> Provenance:
        # partial until the job finishes: a crash mid-generation leaves it marked so in the autosaved draft
        return Provenance(index, index + 1, model=self.host.current_model(), params=to_json(params),
                          job_id=job_id, created=time.time(), partial=True)

    def _refuse_while_running(self) -> bool:
        if self._job is None:
            return False
        self._show_error(self.tr("The model is still writing: wait for it, or cancel."))
        return True

    def _started(self) -> None:
        self._show_status(self.tr("Queued…"))
        self.progress.setText("")
        self._update_running()

    @Slot()
    def cancel(self) -> None:
        """Cancel this panel's generation (Esc); what was written so far is kept."""
        if self._job is not None:
            self.follower.cancel(self._job.id)
            self._show_status(self.tr("Cancelling…"))

    def is_running(self) -> bool:
        return self._job is not None

    # -- job signals (this panel's job only: self.follower filters them) -------------------------------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        self._show_status(self.tr("Queued…"))

    @Slot(str)
    def _on_started(self, job_id: str) -> None:
        self._show_status(self.tr("Loading the model…"))

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if total > 0:
            self.progress.setText(self.tr("%1 / %2 tokens").replace("%1", str(done)).replace("%2", str(total)))
        self._show_status(message or self.tr("Writing…"))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if self._job is None or not isinstance(preview, str):
            return
        if self._job.kind == "document":
            self.editor.append_chunk(preview)
        else:
            self.chat.append_chunk(preview)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        if self._job is None:
            return
        output = _text_output(outputs)
        self._end(output, partial=False)
        meta = output.metadata if output is not None else {}
        text = self.tr("Done.")
        if isinstance(meta.get("new_tokens"), int):
            text = self.tr("Done: %1 token(s).").replace("%1", str(meta["new_tokens"]))
        server = meta.get("server")
        if isinstance(server, dict) and isinstance(server.get("name"), str):  # a remote generator's: its usage
            prompt = meta.get("prompt_tokens")
            text = text[:-1] + " " + self.tr("on %1").replace("%1", server["name"]) + (
                self.tr(" (prompt: %1 tokens).").replace("%1", str(prompt)) if isinstance(prompt, int) else ".")
        if isinstance(meta.get("truncated_tokens"), int) and meta["truncated_tokens"] > 0:
            text += " " + self.tr("The beginning of the prompt (%1 tokens) did not fit the model and was left "
                                  "out.").replace("%1", str(meta["truncated_tokens"]))
        self._show_status(text)

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        if self._job is not None:
            self._end(None, partial=True)
            self._show_error(message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        if self._job is not None:
            kept = self._end(_text_output(partial), partial=True)
            self._show_status(self.tr("Cancelled.") + (" " + self.tr("What was written is kept.") if kept else ""))

    def _end(self, output: TextOutput | None, *, partial: bool) -> bool:
        """Close the running generation with the job's text; record its provenance. True if text was kept."""
        job, self._job = self._job, None
        assert job is not None
        provenance = job.provenance
        provenance.partial = partial
        seed = output.metadata.get("seed") if output is not None else None
        provenance.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None
        final = output.text if output is not None else None
        kept = False
        if job.kind == "document":
            span = self.editor.end_generation(final)
            if span is not None:
                provenance.start, provenance.end, kept = span.start, span.end, True
        else:
            index = self.chat.end_reply(final)
            if index is not None:
                provenance.start, provenance.end, kept = index, index + 1, True
                self._chat_provenance.append(provenance)
            else:  # nothing written: the conversation is as it was, and so is its provenance
                self._chat_provenance = job.chat_provenance
        self._dirty.add(job.kind)
        self.progress.setText("")
        self._update_running()
        return kept

    def _update_running(self) -> None:
        running = self._job is not None
        self.cancel_button.setEnabled(running)
        self.generate_button.setEnabled(not running)
        for widget in (self.new_button, self.delete_button, self.draft_list):
            widget.setEnabled(not running)

    # -- drafts -----------------------------------------------------------------------------------------------

    def current_draft(self) -> Draft:
        """The draft shown (the document's in Continue mode, the chat's in Chat mode), brought up to date."""
        kind = KIND_OF_MODE[self.mode()]
        self._sync(kind)
        return self._drafts[kind]

    def _sync(self, kind: str) -> None:
        draft = self._drafts[kind]
        if kind == "document":
            draft.text = self.editor.text()
            draft.provenance = []
            for span in self.editor.generated_spans():
                if isinstance(span.data, Provenance):
                    span.data.start, span.data.end = span.start, span.end
                    draft.provenance.append(span.data)
        else:
            draft.messages = self.chat.messages()
            draft.system_prompt = self.chat.system_prompt()
            draft.provenance = [p for p in self._chat_provenance if p.start < len(draft.messages)]
            if self._job is not None and self._job.kind == "chat":
                draft.provenance.append(self._job.provenance)

    @Slot()
    def autosave(self) -> int:
        """Save the drafts that changed since they were last saved; returns how many were written."""
        saved: list[Draft] = []
        for kind in sorted(self._dirty):
            self._sync(kind)
            draft = self._drafts[kind]
            try:
                self.store.save(draft)
            except (OSError, DraftError) as exc:
                self._show_error(self.tr("Could not save the draft: %1").replace("%1", str(exc)))
                continue
            self._dirty.discard(kind)
            saved.append(draft)
            self.draft_saved.emit(draft.id)
        if saved:
            self._remember_current()
            self._fill_draft_list(saved)
        return len(saved)

    def is_dirty(self) -> bool:
        return bool(self._dirty)

    @Slot()
    def _on_document_changed(self) -> None:
        if not self._loading:
            self._dirty.add("document")

    @Slot()
    def _on_chat_changed(self) -> None:
        if not self._loading:
            self._dirty.add("chat")

    def _show_draft(self, draft: Draft) -> None:
        self._loading = True
        try:
            self._drafts[draft.kind] = draft
            if draft.kind == "document":
                spans = [GeneratedSpan(p.start, p.end, p) for p in draft.provenance]
                self.editor.set_document(draft.text, spans)
            else:
                self.chat.set_conversation(draft.messages, draft.system_prompt)
                self._chat_provenance = list(draft.provenance)
        finally:
            self._loading = False
        self._dirty.discard(draft.kind)

    def open_draft(self, draft_id: str) -> bool:
        """Save what changed, then show this draft (in its mode)."""
        if self._refuse_while_running():
            return False
        try:
            draft = self.store.load(draft_id)
        except DraftError as exc:
            self._show_error(str(exc))
            self._fill_draft_list()
            return False
        self.autosave()
        self._show_draft(draft)
        self.set_mode(MODE_OF_KIND[draft.kind])
        self._remember_current()
        self._fill_draft_list()
        return True

    def new_draft(self, kind: str | None = None) -> Draft | None:
        """Save what changed, then start an empty draft (of the current mode's kind). None while the model
        writes."""
        if self._refuse_while_running():
            return None
        kind = kind or KIND_OF_MODE[self.mode()]
        self.autosave()
        draft = Draft.new(kind)
        self._show_draft(draft)
        self.set_mode(MODE_OF_KIND[kind])
        self._fill_draft_list()
        return draft

    def delete_draft(self, draft_id: str) -> None:
        """Delete a draft (or a damaged draft's file); an open one is replaced by the newest other or a new one."""
        if self._refuse_while_running():
            return
        self.store.delete(draft_id)
        for kind, draft in list(self._drafts.items()):
            if draft.id == draft_id:
                self._dirty.discard(kind)
                self._show_draft(self._newest(kind) or Draft.new(kind))
        self._remember_current()
        self._fill_draft_list()

    def export_draft(self, path: Path) -> bool:
        """Export the current draft: Markdown for ``.md``, else plain text with a ``.json`` sidecar."""
        draft = self.current_draft()
        try:
            if Path(path).suffix.lower() == ".md":
                export_markdown(draft, Path(path))
            else:
                export_text(draft, Path(path))
        except OSError as exc:
            self._show_error(self.tr("Could not export: %1").replace("%1", str(exc)))
            return False
        self._show_status(self.tr("Exported to %1.").replace("%1", str(path)))
        return True

    def _newest(self, kind: str) -> Draft | None:
        for info in self.store.list():
            if info.kind == kind and not info.damaged:
                try:
                    return self.store.load(info.id)
                except DraftError:
                    continue
        return None

    def _restore(self) -> None:
        """Reopen the draft open last (and the newest of the other kind), the last settings and the presets."""
        self._fill_presets()
        settings = self.host.storage.get(SETTINGS_KEY)
        self.apply_settings(settings if isinstance(settings, dict) else to_json(self.params_type()))
        current: Draft | None = None
        last = self.host.storage.get(DRAFT_KEY)
        if isinstance(last, str):
            try:
                current = self.store.load(last)
            except DraftError:
                current = None
        for kind in KINDS:
            draft = current if current is not None and current.kind == kind else None
            self._show_draft(draft or self._newest(kind) or Draft.new(kind))
        self.set_mode(MODE_OF_KIND[current.kind] if current is not None else "continue")
        self._fill_draft_list()
        self._show_status("")

    def _remember_current(self) -> None:
        draft = self._drafts.get(KIND_OF_MODE[self.mode()])
        if draft is None or not self.store.path(draft.id).exists():
            return
        try:
            if self.host.storage.get(DRAFT_KEY) != draft.id:
                self.host.storage.set(DRAFT_KEY, draft.id)
        except (OSError, TypeError, ValueError):
            log.warning("could not remember the open draft", exc_info=True)

    def _fill_draft_list(self, saved: list[Draft] | None = None) -> None:
        """Show the drafts: read from disk, or (``saved``) the list shown before with these drafts updated."""
        if saved is None:
            self._infos = self.store.list()
        else:
            ids = {d.id for d in saved}
            infos = [i for i in self._infos if i.id not in ids] + [
                DraftInfo(d.id, d.display_title(), d.kind, d.updated) for d in saved]
            self._infos = sorted((i for i in infos if not i.damaged), key=lambda i: (i.updated, i.id),
                                 reverse=True) + [i for i in infos if i.damaged]
        self.draft_list.blockSignals(True)
        self.draft_list.clear()
        current = {d.id for d in self._drafts.values()}
        kinds = {"document": self.tr("Document"), "chat": self.tr("Chat")}
        for info in self._infos:
            title = info.title or self.tr("Untitled")
            item = QListWidgetItem(self.tr("%1 (damaged)").replace("%1", title) if info.damaged else title)
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(info.updated))
            item.setToolTip(self.tr("Could not be read; set aside") if info.damaged
                            else f"{kinds.get(info.kind, info.kind)} — {when}")
            self.draft_list.addItem(item)
            if info.id in current and info.kind == KIND_OF_MODE[self.mode()]:
                self.draft_list.setCurrentItem(item)
        self.draft_list.blockSignals(False)

    def draft_ids(self) -> list[str]:
        """The ids the draft list shows, in order."""
        return [self.draft_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.draft_list.count())]

    @Slot(QListWidgetItem)
    def _on_draft_activated(self, item: QListWidgetItem) -> None:
        draft_id = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(draft_id, str) and not draft_id.endswith(".corrupt") and \
                draft_id != self._drafts[KIND_OF_MODE[self.mode()]].id:
            self.open_draft(draft_id)

    @Slot()
    def _on_new_clicked(self) -> None:
        self.new_draft()

    @Slot()
    def _on_delete_clicked(self) -> None:  # never called by tests: asks for confirmation in a modal dialog
        item = self.draft_list.currentItem()
        if item is None:
            return
        answer = QMessageBox.question(self, self.tr("Delete draft"),
                                      self.tr("Delete “%1”? This cannot be undone.").replace("%1", item.text()))
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_draft(item.data(Qt.ItemDataRole.UserRole))

    def _export_dialog(self, suffix: str, filter_text: str) -> None:  # never called by tests: a modal dialog
        name = self.current_draft().display_title() or "draft"
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in name).strip() or "draft"
        path, _ = QFileDialog.getSaveFileName(self, self.tr("Export draft"), safe + suffix, filter_text)
        if path:
            self.export_draft(Path(path) if Path(path).suffix else Path(path + suffix))

    @Slot()
    def _on_export_md_clicked(self) -> None:
        self._export_dialog(".md", self.tr("Markdown (*.md)"))

    @Slot()
    def _on_export_txt_clicked(self) -> None:
        self._export_dialog(".txt", self.tr("Text (*.txt)"))

    # -- dropped files ---------------------------------------------------------------------------------------

    def open_file(self, path: Path) -> bool:
        """Reuse what made the last generation recorded in an exported ``.md``/``.txt`` (or its ``.json``): its
        params, and through the host its seed and model."""
        found = generation_from_export(Path(path))
        if found is None:
            self._show_error(self.tr("%1 holds no parameters to reuse.").replace("%1", Path(path).name))
            return False
        self.host.reuse(found.params, seed=found.seed, model=found.model)
        self._show_status(self.tr("Reusing what made %1: Generate after the same text makes the same again.")
                          .replace("%1", Path(path).name))
        return True

    # -- reuse from the draft ---------------------------------------------------------------------------------

    def provenance_here(self) -> Provenance | None:
        """Where the text in view came from: in continue mode the generated span at the cursor (or just before
        it); in chat the selected generated reply, else the last one. None where nothing generated is there."""
        if self.mode() == "continue":
            position = from_qt(self.editor.text(), self.editor.textCursor().position())
            for span in self.editor.generated_spans():
                if span.start <= position <= span.end and isinstance(span.data, Provenance):
                    return span.data
            return None
        row = self.chat.message_list.currentRow()
        chosen = [p for p in self._chat_provenance if p.start == row]
        return chosen[-1] if chosen else (self._chat_provenance[-1] if self._chat_provenance else None)

    @Slot()
    def reuse_generation(self) -> bool:
        """Reuse what made the text in view (:meth:`provenance_here`): its settings, seed and model, so that
        Generate after the same text makes the same again. False, with a message, where there is none."""
        provenance = self.provenance_here()
        if provenance is None or not provenance.params:
            self._show_error(self.tr("Put the cursor in generated text (highlighted) to reuse what made it.")
                             if self.mode() == "continue" else self.tr("No generated reply to reuse yet."))
            return False
        self.host.reuse(provenance.params, seed=provenance.seed, model=provenance.model)
        details = [self.tr("seed %1").replace("%1", str(provenance.seed))] if provenance.seed is not None else []
        if provenance.model:
            details.append(self.tr("model %1").replace("%1", provenance.model))
        self._show_status(self.tr("Reusing the settings%1: Generate after the same text makes the same again.")
                          .replace("%1", "".join(", " + d for d in details)))
        return True

    def accepts_file(self, path: Path) -> bool:
        """Exported drafts only (their parameters are reused); other files are left to the editor."""
        return path.suffix.lower() in EXPORT_SUFFIXES

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove, QEvent.Type.Drop):
            if self.dropped_file(event.mimeData()) is not None:  # type: ignore[attr-defined]
                if kind == QEvent.Type.Drop:
                    self.dropEvent(event)  # type: ignore[arg-type]
                else:
                    event.acceptProposedAction()  # type: ignore[attr-defined]
                return True
        return super().eventFilter(watched, event)

    # -- closing, status ---------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.autosave()
        super().closeEvent(event)

    def hideEvent(self, event: QHideEvent) -> None:  # noqa: N802 (Qt)
        self.autosave()
        super().hideEvent(event)

    def _show_status(self, text: str) -> None:
        _mark_error(self.status, False)
        self.status.setText(text)

    def _show_error(self, text: str) -> None:
        _mark_error(self.status, True)
        self.status.setText(text)


def _text_output(outputs: object) -> TextOutput | None:
    return next((o for o in (outputs or ()) if isinstance(o, TextOutput)), None)  # type: ignore[union-attr]


def create_panel(host: PanelHost, autosave_ms: int = 2000, *, params_type: type[TextParamsBase] = TextParams,
                 load_fields: tuple[str, ...] = LOAD_FIELDS) -> TextPanel:
    """A text generator's panel (what ``Generator.create_panel`` returns): ``text.transformers``' by default;
    another text generator passes its params type and the load options to show."""
    return TextPanel(host, autosave_ms=autosave_ms, params_type=params_type, load_fields=load_fields)
