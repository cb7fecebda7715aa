"""The image generator's own panel: prompt, settings, modes, init image and mask, live preview and results.

Talks to the window only through :class:`desktop.api.PanelHost`: ``submit``/``cancel``, ``storage`` (the painted
mask and images sent to image-to-image are saved there as PNG files, because params carry paths; the last params
are kept under :data:`PARAMS_KEY`) and the host's job signals, followed for the jobs this panel submitted only (a
:class:`~desktop.api.widgets.JobFollower`). The plain settings are two of the host's
:class:`~desktop.api.widgets.ParamsForm` (the memory savers fold away); the prompts, mode, init image, mask and
LoRAs have widgets of their own.

Layout: the settings column on the left (collapsible: Ctrl+B), and on the right one slim toolbar row above the
tabs (Result; Init image or Mask), the result filling the Result tab above the strip of this session's results
(plugins/image/workspace.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import is_dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QAction, QImage, QImageReader
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api import ImageOutput, PanelHost, ParamError, StudioloError, from_json, schema, to_json, validate
from desktop.api.widgets import FileDropMixin, JobFollower, ParamsForm
from plugins.image.addon_choosers import offer_upscalers
from plugins.image.control_editor import ControlNetEditor
from plugins.image.image_view import is_pil_image, png_bytes, save_png
from plugins.image.mask_painter import MaskEditor
from plugins.image.outpaint import check_extents
from plugins.image.params import ImageParams
from plugins.image.result_info import JobRecord
from plugins.image.vary import install_vary_actions
from plugins.image.widgets import Collapsible, LoraEditor
from plugins.image.workspace import ResultWorkspace, add_to_toolbar, make_action, shortcut_text

log = logging.getLogger(__name__)

PARAMS_KEY = "last_params"
"""The ``host.storage`` key holding the params of the last job this panel submitted (as JSON)."""
WORKSPACE_KEY = "_workspace"
"""The key of :meth:`ImagePanel.panel_state` holding the layout (settings shown or hidden, their width) beside
the params' fields (a key no params field has; states kept before it existed are plain params)."""
SETTINGS_WIDTH = 340
"""The settings column's width at first (pixels); the result gets the rest."""
MODES = ("txt2img", "img2img", "inpaint", "outpaint", "upscale")
SETTINGS = ("width", "height", "steps", "guidance_scale", "scheduler", "batch_size", "batch_count", "strength",
            "preview_every")
"""The fields in the settings form."""
LOAD_OPTIONS = ("dtype", "attention_slicing", "vae_tiling", "cpu_offload")
"""The fields in the memory savers' form."""
VARIATION = ("variation_seed", "variation_strength", "prompt_to", "prompt_mix")
"""The fields in the variation form (folded away until used: Vary and interpolation frames set them)."""
OUTPAINT = ("outpaint_left", "outpaint_right", "outpaint_top", "outpaint_bottom", "outpaint_feather", "outpaint_fill")
"""The fields in the outpaint form (shown in outpaint mode only, where width and height are not used)."""
UPSCALE = ("upscaler", "upscale_tile", "upscale_by")
"""The fields in the upscale form (shown in upscale mode only)."""
HIRES = ("hires_scale", "hires_upscaler", "hires_steps", "hires_denoise")
"""The fields in the hires fix form (txt2img only; folded away until used)."""
IP_ADAPTER = ("ip_adapter", "ip_adapter_scale")
"""The fields in the IP-Adapter form (folded away until used)."""
FORM_FIELDS = VARIATION + OUTPAINT + UPSCALE + HIRES + IP_ADAPTER
"""The fields of the forms beside the settings and the memory savers (each form marks its own invalid fields)."""
INVALID_STYLE = "#%s { border: 2px solid #e53935; }"  # the params form's colour: 3:1 or more in both themes

ReuseFromFile = Callable[[Path], "object | None"]


def _mark_error(label: QLabel, error: bool) -> None:
    """Draw ``label`` in the host theme's error colour, or not: the theme styles widgets whose ``error`` property is
    true (desktop/ui/theme.py), legible in light and dark."""
    label.setProperty("error", error)
    label.style().unpolish(label)
    label.style().polish(label)


class ImagePanel(FileDropMixin, QWidget):
    """The image generator's panel. ``generate()``/``cancel()`` are what the window's Ctrl+Enter and Esc call.

    ``reuse_from_file`` (optional) reads params from a dropped file (a PNG with metadata); a file it returns
    ``None`` for is taken as an init image.
    """

    def __init__(self, host: PanelHost, params_type: type = ImageParams, *,
                 reuse_from_file: ReuseFromFile | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("image_panel")
        self.host = host
        self.params_type = params_type
        self._reuse_from_file = reuse_from_file
        self._fields = {f.name: f for f in schema(params_type)}
        self._init_path: Path | None = None
        self._saved_mask: tuple[int, Path] | None = None  # (painter revision, file) of the last mask saved
        self._marked: list[QWidget] = []
        self._jobs: dict[str, JobRecord] = {}  # the params and model of each job submitted and not ended
        self._settings_width = SETTINGS_WIDTH
        self.follower = JobFollower(host, self)
        """Follows the jobs this panel submitted."""
        self._build()
        self.setAcceptDrops(True)
        for event in ("queued", "started", "progressed", "previewed", "finished", "failed", "cancelled"):
            getattr(self.follower, event).connect(getattr(self, f"_on_{event}"))
        self.follower.running_changed.connect(self.cancel_button.setEnabled)
        host.params_applied.connect(self.apply_params)  # type: ignore[attr-defined]
        self._restore()
        self._update_mode()

    # -- building --------------------------------------------------------------------------------------------

    def _named(self, widget: QWidget, name: str, accessible: str) -> QWidget:
        widget.setObjectName(name)
        widget.setAccessibleName(accessible)
        field = self._fields.get(name)
        if field is not None and field.spec.help:
            widget.setToolTip(field.spec.help)
        return widget

    @staticmethod
    def _relabel(combo: QComboBox, texts: Mapping[str, str]) -> None:
        """Show these texts for the choices (each item's data) of a form's combo box."""
        for index in range(combo.count()):
            text = texts.get(combo.itemData(index))
            if text is not None:
                combo.setItemText(index, text)

    def _build(self) -> None:
        tr = self.tr
        # mode
        self.mode_box = QFrame(self)
        self._named(self.mode_box, "mode", tr("Mode"))
        self.mode_group = QButtonGroup(self)
        mode_layout = QHBoxLayout(self.mode_box)
        mode_layout.setContentsMargins(0, 0, 0, 0)
        mode_texts = {"txt2img": tr("Text to image"), "img2img": tr("Image to image"), "inpaint": tr("Inpaint"),
                      "outpaint": tr("Outpaint"), "upscale": tr("Upscale")}
        for index, mode in enumerate(MODES):
            button = QRadioButton(mode_texts[mode], self.mode_box)
            self._named(button, f"mode_{mode}", mode_texts[mode])
            self.mode_group.addButton(button, index)
            mode_layout.addWidget(button)
        mode_layout.addStretch(1)
        self.mode_group.button(0).setChecked(True)
        # prompts
        self.prompt = QPlainTextEdit(self)
        self._named(self.prompt, "prompt", tr("Prompt"))
        self.prompt.setPlaceholderText(tr("Describe the picture…"))
        self.negative_prompt = QPlainTextEdit(self)
        self._named(self.negative_prompt, "negative_prompt", tr("Negative prompt"))
        self.negative_prompt.setPlaceholderText(tr("What to keep out of it…"))
        for edit, height in ((self.prompt, 90), (self.negative_prompt, 60)):
            edit.setTabChangesFocus(True)
            edit.setMinimumHeight(height)
            edit.setMaximumHeight(height * 2)
        # settings: the host's form for the plain fields
        self.settings_form = ParamsForm(self.params_type, self, fields=SETTINGS, scrollable=False)
        self.settings_form.setObjectName("settings")
        field = self.settings_form.field_widget
        self.width_spin, self.height_spin, self.steps = field("width"), field("height"), field("steps")
        self.guidance_scale, self.scheduler, self.strength = field("guidance_scale"), field("scheduler"), \
            field("strength")
        self.batch_size, self.batch_count, self.preview_every = field("batch_size"), field("batch_count"), \
            field("preview_every")
        self._relabel(self.scheduler, {"default": tr("Model default"), "euler": "Euler", "euler_a": "Euler a",
                                       "dpmpp_2m": "DPM++ 2M", "ddim": "DDIM", "unipc": "UniPC"})
        self.preview_every.setSpecialValueText(tr("Off"))
        self.preview_every.setSuffix(tr(" step(s)"))
        self.init_row = QFrame(self)
        self._named(self.init_row, "init_image", tr("Init image"))
        self.init_label = QLabel(tr("None — drop an image here"), self.init_row)
        self.init_label.setObjectName("init_label")
        self.load_init_button = QPushButton(tr("Load init image…"), self.init_row)
        self._named(self.load_init_button, "load_init", tr("Load init image"))
        self.clear_init_button = QToolButton(self.init_row)
        self.clear_init_button.setText("✕")
        self._named(self.clear_init_button, "clear_init", tr("Remove init image"))
        self.clear_init_button.setToolTip(tr("Remove the init image"))
        init_layout = QHBoxLayout(self.init_row)
        init_layout.setContentsMargins(0, 0, 0, 0)
        init_layout.addWidget(self.init_label, 1)
        init_layout.addWidget(self.load_init_button)
        init_layout.addWidget(self.clear_init_button)
        self.form = QFormLayout()  # the init image's row, shown in the modes that use one
        self.form.addRow(tr("Init image"), self.init_row)
        # LoRAs and memory savers
        self.loras = LoraEditor(self._fields["loras"].spec.max_items or 8, self,  # stored LoRAs offered by name
                                stored=lambda: list(getattr(self.host, "addon_models", lambda kind: [])("lora")))
        self.controls = ControlNetEditor(self.host, self.params, self, canvas=self.canvas_image,
                                         has_canvas=self.has_canvas_image)  # plugins/image/control_editor.py
        self.controlnet = Collapsible(tr("ControlNet"), self.controls, self)
        self.controlnet.toggle.setObjectName("controlnet_toggle")
        self.memory_form = ParamsForm(self.params_type, self, fields=LOAD_OPTIONS, scrollable=False)
        self.memory_form.setObjectName("memory")
        field = self.memory_form.field_widget
        self.dtype, self.attention_slicing = field("dtype"), field("attention_slicing")
        self.vae_tiling, self.cpu_offload = field("vae_tiling"), field("cpu_offload")
        self._relabel(self.dtype, {"auto": tr("Automatic")})
        self.memory = Collapsible(tr("Memory savers"), self.memory_form, self)
        self.memory.toggle.setObjectName("memory_savers")
        self.variation_form = ParamsForm(self.params_type, self, fields=VARIATION, scrollable=False)
        self.variation_form.setObjectName("variation")
        self.variation = Collapsible(tr("Variation and prompt mix"), self.variation_form, self)
        self.variation.toggle.setObjectName("variation_toggle")
        self.outpaint_form = ParamsForm(self.params_type, self, fields=OUTPAINT, scrollable=False)
        self.outpaint_form.setObjectName("outpaint")
        self.upscale_form = ParamsForm(self.params_type, self, fields=UPSCALE, scrollable=False)
        self.upscale_form.setObjectName("upscale")
        self.hires_form = ParamsForm(self.params_type, self, fields=HIRES, scrollable=False)
        self.hires_form.setObjectName("hires")
        self.hires = Collapsible(tr("Hires fix"), self.hires_form, self)
        self.hires.toggle.setObjectName("hires_toggle")
        self.ip_adapter_form = ParamsForm(self.params_type, self, fields=IP_ADAPTER, scrollable=False)
        self.ip_adapter_form.setObjectName("ip_adapter")
        self.ip_adapter = Collapsible(tr("IP-Adapter (image prompt)"), self.ip_adapter_form, self)
        self.ip_adapter.toggle.setObjectName("ip_adapter_toggle")
        self._forms = (self.variation_form, self.outpaint_form, self.upscale_form, self.hires_form,
                       self.ip_adapter_form)  # the forms of FORM_FIELDS
        # the left column
        settings = QWidget(self)
        left = QVBoxLayout(settings)
        left.addWidget(self.mode_box)
        left.addWidget(QLabel(tr("Prompt"), self))
        left.addWidget(self.prompt)
        left.addWidget(QLabel(tr("Negative prompt"), self))
        left.addWidget(self.negative_prompt)
        left.addLayout(self.form)
        left.addWidget(self.outpaint_form)
        left.addWidget(self.upscale_form)
        left.addWidget(self.settings_form)
        left.addWidget(QLabel(tr("LoRAs"), self))
        left.addWidget(self.loras)
        left.addWidget(self.controlnet)
        left.addWidget(self.ip_adapter)
        left.addWidget(self.hires)
        left.addWidget(self.variation)
        left.addWidget(self.memory)
        left.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(settings)
        self.generate_button = QPushButton(tr("Generate"), self)
        self._named(self.generate_button, "generate", tr("Generate"))
        self.generate_button.setToolTip(tr("Generate (Ctrl+Enter)"))
        self.cancel_button = QPushButton(tr("Cancel"), self)
        self._named(self.cancel_button, "cancel", tr("Cancel"))
        self.cancel_button.setToolTip(tr("Cancel (Esc)"))
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar(self)
        self._named(self.progress, "progress", tr("Progress"))
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.status = QLabel(self)
        self._named(self.status, "status", tr("Status"))
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        left_column = QWidget(self)
        left_layout = QVBoxLayout(left_column)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(scroll, 1)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.status)
        self.settings_column = left_column
        self.settings_column.setObjectName("settings_column")
        # the right column: one toolbar row; the result (with the strip), and the init image with its mask
        self.viewer = ResultWorkspace(self)
        self.strip = self.viewer.strip
        self.toolbar: QToolBar = self.viewer.toolbar
        self.settings_action = make_action(self, "toggle_settings", tr("Settings"), tr("Hide settings"))
        self.settings_action.setCheckable(True)
        self.settings_action.setChecked(True)
        first = self.toolbar.actions()[0]
        self.settings_button = add_to_toolbar(self.toolbar, self.settings_action, tr("Show or hide settings"), first)
        self.toolbar.insertSeparator(first)
        self.toolbar.addSeparator()
        # "Use as input": the selected result becomes the init image of image-to-image (the button) or of
        # inpainting (its menu); the chain records the result's library file as the parent of what comes next
        self.send_action = make_action(self, "send_to_img2img", tr("Use as input"),
                                       tr("Use the selected result as the init image of image-to-image"))
        self.send_action.setEnabled(False)
        self.inpaint_action = make_action(self, "send_to_inpaint", tr("Inpaint"),
                                          tr("Use the selected result as the init image of inpainting"))
        self.inpaint_action.setEnabled(False)
        self.img2img_action = make_action(self, "send_to_img2img_menu", tr("Image-to-image"),
                                          tr("Use the selected result as the init image of image-to-image"))
        self.img2img_action.setEnabled(False)
        self.send_button = add_to_toolbar(self.toolbar, self.send_action, tr("Use as input"))
        self.send_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.send_menu = QMenu(self.send_button)
        self.send_menu.setObjectName("use_as_input_menu")
        self.send_menu.addAction(self.img2img_action)
        self.send_menu.addAction(self.inpaint_action)
        self.send_button.setMenu(self.send_menu)
        self.send_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.viewer.install_shortcuts(self)
        install_vary_actions(self)
        self.addAction(self.settings_action)
        self.mask_editor = MaskEditor(self)
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("image_tabs")
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.viewer, tr("Result"))
        self.tabs.addTab(self.mask_editor, tr("Init image"))
        right_column = QWidget(self)
        right_column.setObjectName("result_column")
        right_layout = QVBoxLayout(right_column)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.setSpacing(0)
        right_layout.addWidget(self.toolbar)
        right_layout.addWidget(self.tabs, 1)
        self.result_column = right_column
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("workspace_splitter")
        self.splitter.addWidget(left_column)
        self.splitter.addWidget(right_column)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)
        self.splitter.setSizes([SETTINGS_WIDTH, 800])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)
        # wiring
        self.mode_group.idToggled.connect(self._on_mode_toggled)
        self.mode_group.idClicked.connect(self._on_mode_clicked)
        self.load_init_button.clicked.connect(self._browse_init)
        self.clear_init_button.clicked.connect(self.clear_init_image)
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.cancel_button.clicked.connect(self.cancel)
        self.controls.changed.connect(lambda: self._unmark(self.controls))  # edited: marked again on Generate
        self.viewer.current_changed.connect(self._on_current_result)
        self.viewer.current_changed.connect(self.controls.update_canvas)  # "From canvas": the selected result
        self.addon_choosers = offer_upscalers(self.findChildren(ParamsForm), self.host)  # installed upscalers
        self.send_action.triggered.connect(self.send_to_img2img)
        self.img2img_action.triggered.connect(self.send_to_img2img)
        self.inpaint_action.triggered.connect(lambda: self.use_as_input("inpaint"))
        self.settings_action.toggled.connect(self.set_settings_visible)
        self.toolbar.actionTriggered.connect(self._on_tool_triggered)
        self._update_settings_action()

    # -- params ----------------------------------------------------------------------------------------------

    def mode(self) -> str:
        """The chosen mode: txt2img, img2img or inpaint."""
        return MODES[max(0, self.mode_group.checkedId())]

    def set_mode(self, mode: str) -> None:
        """Choose a mode (the controls it needs are shown, the others hidden)."""
        if mode in MODES:
            self.mode_group.button(MODES.index(mode)).setChecked(True)

    def params(self) -> Any:
        """The params the widgets hold (the whole not validated yet; an invalid setting in a form raises
        ``ParamError``, the field marked). In inpaint mode a painted mask is saved to storage."""
        mode = self.mode()
        values: dict[str, Any] = {
            "prompt": self.prompt.toPlainText(),
            "negative_prompt": self.negative_prompt.toPlainText(),
            "mode": mode,
            **self.settings_form.values(),
            "init_image": self._init_path if mode != "txt2img" else None,
            "mask_image": self._save_mask() if mode == "inpaint" else None,
            "loras": self.loras.loras(),
            "controlnets": self.controls.units(),  # ParamError for an invalid unit
            **self.memory_form.values(),
            **self._form_values(),
        }
        return self.params_type(**{name: value for name, value in values.items() if name in self._fields})

    @Slot(object)
    def apply_params(self, params: object) -> None:
        """Show these params in every widget (reuse parameters): params of this panel's type, of a compatible
        dataclass, or their JSON form."""
        try:
            p = self._coerce(params)
            self.settings_form.set_params(p)  # validates p first: nothing changes if it is refused
            self.memory_form.set_params(p)
            for form in self._forms:
                form.set_params(p)
        except (StudioloError, TypeError, ValueError) as exc:
            self._show_error(self.tr("These parameters cannot be used here: %1").replace("%1", str(exc)))
            return
        self._clear_marks()
        self.prompt.setPlainText(p.prompt)
        self.negative_prompt.setPlainText(p.negative_prompt)
        self.set_mode(p.mode)
        self.loras.set_loras(list(p.loras))
        self.controls.set_units(list(getattr(p, "controlnets", ())))
        if getattr(p, "controlnets", None):
            self.controlnet.set_expanded(True)
        defaults = self.params_type()
        if any(getattr(p, name) != getattr(defaults, name) for name in LOAD_OPTIONS):
            self.memory.set_expanded(True)
        for fields, section in ((VARIATION, self.variation), (HIRES, self.hires), (IP_ADAPTER, self.ip_adapter)):
            if any(getattr(p, name) != getattr(defaults, name) for name in fields):
                section.set_expanded(True)
        if p.init_image is not None and Path(p.init_image) != self._init_path:
            self.set_init_image(Path(p.init_image))
        if p.mask_image is not None and self._init_path is not None:
            mask = QImage(str(p.mask_image))
            if mask.isNull():
                self._show_error(self.tr("The mask %1 cannot be read.").replace("%1", str(p.mask_image)))
            else:
                self.mask_editor.painter.set_mask(mask)

    def _coerce(self, params: object) -> Any:
        if isinstance(params, self.params_type):
            return params
        if isinstance(params, Mapping):
            return from_json(self.params_type, params)
        if is_dataclass(params) and not isinstance(params, type):
            return from_json(self.params_type, to_json(params))
        raise TypeError(f"not image parameters: {type(params).__name__}")

    def _save_mask(self) -> Path | None:
        painter = self.mask_editor.painter
        if not painter.has_mask():
            return None
        if self._saved_mask is None or self._saved_mask[0] != painter.revision() or not self._saved_mask[1].exists():
            path = save_png(png_bytes(painter.mask()), self.host.storage.directory, "mask")
            self._saved_mask = (painter.revision(), path)
        return self._saved_mask[1]

    # -- init image ------------------------------------------------------------------------------------------

    def init_image(self) -> Path | None:
        """The init image's file (used in image-to-image and inpaint modes)."""
        return self._init_path

    def set_init_image(self, path: Path) -> bool:
        """Use this file as the init image (the mask starts empty). False, with a message, if it is unreadable."""
        reader = QImageReader(str(path))
        image = reader.read()
        if image.isNull():
            self._show_error(self.tr("%1 cannot be read as an image: %2").replace("%1", str(path))
                             .replace("%2", reader.errorString()))
            return False
        self._init_path = Path(path)
        self.mask_editor.painter.set_image(image)
        self.init_label.setText(self._init_path.name)
        self.init_label.setToolTip(str(self._init_path))
        self._unmark(self.init_row)
        self.controls.update_canvas()
        return True

    @Slot()
    def clear_init_image(self) -> None:
        """Forget the init image and its mask."""
        self._init_path = None
        self.mask_editor.painter.set_image(QImage())
        self.init_label.setText(self.tr("None — drop an image here"))
        self.init_label.setToolTip("")
        self.controls.update_canvas()

    def load_init_image(self, path: Path) -> bool:
        """Take a file as the init image and switch text-to-image to image-to-image."""
        if not self.set_init_image(path):
            return False
        if self.mode() == "txt2img":
            self.set_mode("img2img")
        self.tabs.setCurrentWidget(self.mask_editor)
        return True

    def open_file(self, path: Path) -> bool:
        """A file dropped or opened: its params if ``reuse_from_file`` finds some, else an init image."""
        if self._reuse_from_file is not None:
            try:
                params = self._reuse_from_file(path)
            except Exception:  # a broken parser must not break the drop
                log.exception("reading params from %s failed", path)
                params = None
            if params is not None:  # params, or what made the file (params, seed, model: a metadata.Reuse)
                self.host.reuse(getattr(params, "params", params), seed=getattr(params, "seed", None),
                                model=getattr(params, "model", None))
                self._show_status(self.tr("Reusing what made %1 (its seed and model too).").replace("%1", path.name))
                return True
        return self.load_init_image(path)

    @Slot()
    def _browse_init(self) -> None:  # never called by tests: opens a modal dialog
        name, _ = QFileDialog.getOpenFileName(self, self.tr("Load init image"), "",
                                              self.tr("Images (*.png *.jpg *.jpeg *.webp *.bmp);;All files (*)"))
        if name:
            self.load_init_image(Path(name))


    # -- actions ---------------------------------------------------------------------------------------------

    @Slot()
    def _on_generate_clicked(self) -> None:
        self.generate()

    def generate(self) -> str | None:
        """Validate the widgets' params and submit them; return the job id, or None (the problem is shown)."""
        self._clear_marks()
        try:
            params = self.params()
            mode = getattr(params, "mode", "txt2img")
            if mode != "txt2img" and getattr(params, "init_image", None) is None:
                raise ParamError("init_image", None, self.tr("image-to-image and inpainting need an init image"),
                                 hint=self.tr("Load one, or drop an image file on the panel."))
            if mode == "inpaint" and getattr(params, "mask_image", None) is None:
                raise ParamError("mask_image", None, self.tr("paint over what should be repainted"))
            if mode == "outpaint":
                check_extents(params)  # at least one side extended
            params = validate(params, self.params_type)
            model = self.host.current_model()
            job_id = self.follower.submit(params)
        except ParamError as exc:
            self._mark(exc)
            return None
        except (StudioloError, OSError) as exc:
            self._show_error(str(exc))
            return None
        try:
            self.host.storage.set(PARAMS_KEY, to_json(params))
        except (OSError, TypeError, ValueError):
            log.warning("could not keep the image panel's params", exc_info=True)
        self._jobs[job_id] = JobRecord(to_json(params), model)
        self._show_status(self.tr("Queued…"))
        self.progress.setRange(0, 0)
        return job_id

    @Slot()
    def cancel(self) -> None:
        """Cancel this panel's running and queued jobs (Esc)."""
        if self.follower.is_running():
            self.follower.cancel()
            self._show_status(self.tr("Cancelling…"))

    @Slot()
    def send_to_img2img(self) -> bool:
        """Make the selected result the init image of image-to-image (see :meth:`use_as_input`)."""
        return self.use_as_input("img2img")

    def use_as_input(self, mode: str = "img2img") -> bool:
        """Make the selected result the init image of ``mode`` (img2img or inpaint). A result the host saved is
        used as its library file (so the next job's outputs record it as their parent); one not saved is kept as
        a PNG in storage first."""
        output = self.strip.output(self.strip.currentRow())
        if output is None:
            return False
        saved = getattr(output, "saved_path", None)
        if saved is not None and Path(saved).is_file():
            path = Path(saved)
        else:
            try:
                path = save_png(png_bytes(output.image), self.host.storage.directory, "init")
            except OSError as exc:
                self._show_error(self.tr("Could not keep the image: %1").replace("%1", str(exc)))
                return False
        if not self.set_init_image(path):
            return False
        self.set_mode(mode)
        self.tabs.setCurrentWidget(self.mask_editor)
        self._show_status(self.tr("The result is now the init image."))
        return True

    def has_canvas_image(self) -> bool:
        """Whether the panel has a current picture: a selected result, or an init image."""
        return self.strip.output(self.strip.currentRow()) is not None or self._init_path is not None

    def canvas_image(self) -> Path | None:
        """The current picture's file ("From canvas" in a ControlNet unit): the selected result's saved file (one
        the host did not save is kept as a PNG in storage first), else the init image; None when there is none."""
        output = self.strip.output(self.strip.currentRow())
        if output is None:
            return self._init_path
        saved = getattr(output, "saved_path", None)
        if saved is not None and Path(saved).is_file():
            return Path(saved)
        return save_png(png_bytes(output.image), self.host.storage.directory, "canvas")

    def results(self) -> list[ImageOutput]:
        """This session's results, oldest first (the strip's order)."""
        return self.strip.outputs()

    # -- job signals (this panel's jobs only: self.follower filters them) ------------------------------------

    @Slot(str)
    def _on_queued(self, job_id: str) -> None:
        self._show_status(self.tr("Queued…"))

    @Slot(str)
    def _on_started(self, job_id: str) -> None:
        self.progress.setRange(0, 0)
        self._show_status(self.tr("Loading the model…"))

    @Slot(str, int, int, str)
    def _on_progressed(self, job_id: str, done: int, total: int, message: str) -> None:
        if total > 0:
            self.progress.setRange(0, total)
            self.progress.setValue(done)
        self._show_status(message or self.tr("Generating…"))

    @Slot(str, object)
    def _on_previewed(self, job_id: str, preview: object) -> None:
        if is_pil_image(preview):
            self.viewer.show_preview(preview)
            self.tabs.setCurrentIndex(0)

    @Slot(str, object)
    def _on_finished(self, job_id: str, outputs: object) -> None:
        added = self._add_results(job_id, outputs)
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        seed = added[0].metadata.get("seed") if added else None
        text = self.tr("Done: %1 image(s).").replace("%1", str(len(added)))
        self._show_status(text + (" " + self.tr("Seed %1.").replace("%1", str(seed)) if seed is not None else ""))

    @Slot(str, str)
    def _on_failed(self, job_id: str, message: str) -> None:
        self._jobs.pop(job_id, None)
        self.viewer.show_selected()  # not the failed job's last preview
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show_error(message)

    @Slot(str, object)
    def _on_cancelled(self, job_id: str, partial: object) -> None:
        added = self._add_results(job_id, partial)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show_status(self.tr("Cancelled.") + (self.tr(" The partial result was kept.") if added else ""))

    def _add_results(self, job_id: str, outputs: object) -> list[ImageOutput]:
        """Add a job's outputs to the strip and show the first; with none, show the selected result again (not
        the job's last preview)."""
        job = self._jobs.pop(job_id, None)
        added = [o for o in (outputs or ()) if isinstance(o, ImageOutput)]  # type: ignore[union-attr]
        rows = [self.viewer.add_result(output, job) for output in added]
        if rows:
            self.viewer.select(rows[0])
            self.tabs.setCurrentIndex(0)
        else:
            self.viewer.show_selected()
        return added

    @Slot(int)
    def _on_current_result(self, row: int) -> None:
        has_result = self.strip.output(row) is not None
        for action in (self.send_action, self.img2img_action, self.inpaint_action):
            action.setEnabled(has_result)

    # -- the settings column -------------------------------------------------------------------------------

    def settings_visible(self) -> bool:
        """Whether the settings column is shown (Ctrl+B hides it: the result takes the whole width)."""
        return not self.settings_column.isHidden()

    @Slot(bool)
    def set_settings_visible(self, visible: bool) -> None:
        """Show the settings column at the width it had, or hide it."""
        if visible == self.settings_visible():
            self._update_settings_action()
            return
        if visible:
            self.settings_column.show()
            total = sum(self.splitter.sizes())
            self.splitter.setSizes([self._settings_width, max(1, total - self._settings_width)])
        else:
            width = self.splitter.sizes()[0]
            if width > 0:
                self._settings_width = width
            focus = self.focusWidget()
            if focus is not None and self.settings_column.isAncestorOf(focus):
                self.viewer.view.setFocus(Qt.FocusReason.OtherFocusReason)  # the keys keep working
            self.settings_column.hide()
        self.splitter.refresh()  # lay out now: the result takes the room at once
        self._update_settings_action()

    @Slot()
    def toggle_settings(self) -> None:
        """Hide the settings column if shown, else show it."""
        self.set_settings_visible(not self.settings_visible())

    def _update_settings_action(self) -> None:
        visible = self.settings_visible()
        self.settings_action.setChecked(visible)
        tip = self.tr("Hide settings") if visible else self.tr("Show settings")
        self.settings_action.setToolTip(f"{tip} ({shortcut_text('toggle_settings')})")

    @Slot(QAction)
    def _on_tool_triggered(self, action: QAction) -> None:
        if action is not self.settings_action:
            self.tabs.setCurrentIndex(0)  # the result tools act on the Result tab: show it

    # -- mode, status and marks ---------------------------------------------------------------------------

    @Slot(int, bool)
    def _on_mode_toggled(self, _id: int, checked: bool) -> None:
        if checked:
            self._update_mode()

    @Slot(int)
    def _on_mode_clicked(self, index: int) -> None:
        self.tabs.setCurrentIndex(1 if MODES[index] != "txt2img" else 0)

    def _update_mode(self) -> None:
        mode = self.mode()
        uses_init = mode != "txt2img"
        self.settings_form.set_field_visible("strength", uses_init and mode != "upscale")
        for name in ("width", "height"):  # outpaint: the size is the init image's and the extents
            self.settings_form.set_field_visible(name, mode not in ("outpaint", "upscale"))
        self.outpaint_form.setVisible(mode == "outpaint")
        self.upscale_form.setVisible(mode == "upscale")
        self.hires.setVisible(mode == "txt2img")
        self.form.setRowVisible(self.init_row, uses_init)
        self.tabs.setTabVisible(1, uses_init)
        self.tabs.tabBar().setVisible(uses_init)  # one tab: no tab bar, the result gets its room
        self.tabs.setTabText(1, self.tr("Mask") if mode == "inpaint" else self.tr("Init image"))
        self.mask_editor.set_tools_visible(mode == "inpaint")
        if mode == "inpaint":
            self.tabs.setCurrentIndex(1)

    def _form_values(self) -> dict[str, Any]:
        """The values of the forms of :data:`FORM_FIELDS`."""
        return {name: value for form in self._forms for name, value in form.values().items()}

    def _field_widgets(self) -> dict[str, QWidget]:
        return {"prompt": self.prompt, "negative_prompt": self.negative_prompt, "mode": self.mode_box,
                "width": self.width_spin, "height": self.height_spin, "steps": self.steps,
                "guidance_scale": self.guidance_scale, "scheduler": self.scheduler, "batch_size": self.batch_size,
                "batch_count": self.batch_count, "strength": self.strength, "init_image": self.init_row,
                "mask_image": self.mask_editor.painter, "loras": self.loras, "controlnets": self.controls,
                "preview_every": self.preview_every,
                "dtype": self.dtype, "attention_slicing": self.attention_slicing, "vae_tiling": self.vae_tiling,
                "cpu_offload": self.cpu_offload,
                **{name: form.field_widget(name) for form in self._forms for name in form.field_names()}}

    def _mark(self, exc: ParamError) -> None:
        widget = self._field_widgets().get(exc.field)
        label = widget.accessibleName() if widget is not None else exc.field
        text = f"{label}: {exc.allowed}." + (f"\n{exc.hint}" if exc.hint else "")
        self._show_error(text)
        if widget is None:
            return
        if exc.field not in SETTINGS + LOAD_OPTIONS + FORM_FIELDS:  # the forms mark their own fields
            widget.setProperty("invalid", True)
            widget.setStyleSheet(INVALID_STYLE % widget.objectName())
            widget.setAccessibleDescription(text)
            self._marked.append(widget)
        if exc.field in LOAD_OPTIONS:
            self.memory.set_expanded(True)
        for fields, section in ((VARIATION, self.variation), (HIRES, self.hires), (IP_ADAPTER, self.ip_adapter)):
            if exc.field in fields:
                section.set_expanded(True)
        if exc.field == "controlnets":
            self.controlnet.set_expanded(True)
        if exc.field == "mask_image":
            self.tabs.setCurrentWidget(self.mask_editor)
        widget.setFocus(Qt.FocusReason.OtherFocusReason)

    def _unmark(self, widget: QWidget) -> None:
        if widget in self._marked:
            self._marked.remove(widget)
            widget.setProperty("invalid", False)
            widget.setStyleSheet("")
            widget.setAccessibleDescription("")

    def _clear_marks(self) -> None:
        for widget in list(self._marked):
            self._unmark(widget)

    def _show_status(self, text: str) -> None:
        _mark_error(self.status, False)
        self.status.setText(text)

    def _show_error(self, text: str) -> None:
        _mark_error(self.status, True)
        self.status.setText(text)

    def panel_state(self) -> dict[str, Any]:
        """What the widgets hold now, as params JSON (the init image's path included, a painted mask not), and the
        layout under :data:`WORKSPACE_KEY`: the window keeps it when it closes (edits not used in a job yet
        included) and gives it to :meth:`restore_panel_state` on the next start. While a setting is invalid, the
        layout only."""
        width = self.splitter.sizes()[0] if self.settings_visible() else self._settings_width
        workspace = {"settings_visible": self.settings_visible(), "settings_width": width or self._settings_width}
        if not (self.settings_form.is_valid() and self.memory_form.is_valid()
                and all(form.is_valid() for form in self._forms)):
            return {WORKSPACE_KEY: workspace}
        values: dict[str, Any] = {
            "prompt": self.prompt.toPlainText(), "negative_prompt": self.negative_prompt.toPlainText(),
            "mode": self.mode(), **self.settings_form.values(), "init_image": self._init_path,
            "loras": self.loras.loras(), "controlnets": self.controls.texts(), **self.memory_form.values(),
            **self._form_values(),
        }
        params = to_json(self.params_type(**{name: value for name, value in values.items() if name in self._fields}))
        return {**params, WORKSPACE_KEY: workspace}

    def restore_panel_state(self, state: Mapping[str, Any]) -> None:
        """Show what :meth:`panel_state` gave (params that another version kept and no longer fit: the defaults;
        a state without params, or plain params JSON as kept before the layout was: what it has)."""
        params = {key: value for key, value in state.items() if key != WORKSPACE_KEY}
        if params:
            self._show_params_data(params)
        workspace = state.get(WORKSPACE_KEY)
        if isinstance(workspace, Mapping):
            width = workspace.get("settings_width")
            if isinstance(width, int) and not isinstance(width, bool) and width > 0:
                self._settings_width = width
                if self.settings_visible():
                    total = sum(self.splitter.sizes())
                    self.splitter.setSizes([width, max(1, total - width)])
            if isinstance(workspace.get("settings_visible"), bool):
                self.set_settings_visible(workspace["settings_visible"])

    def _restore(self) -> None:
        """Show the last submitted params (kept in storage), or the defaults."""
        self._show_params_data(self.host.storage.get(PARAMS_KEY))

    def _show_params_data(self, data: object) -> None:
        """Show params from their JSON form (an init image no longer there left out), or the defaults."""
        params = self.params_type()
        if isinstance(data, Mapping):
            try:
                params = from_json(self.params_type, dict(data))
            except ParamError as exc:  # kept by another version: start from the defaults
                log.info("not restoring the image panel's params: %s", exc)
        if params.init_image is not None and not Path(params.init_image).is_file():
            params = replace(params, init_image=None, mask_image=None)
        self.apply_params(params)
        self._show_status("")


def create_panel(host: PanelHost, reuse_from_file: ReuseFromFile | None = None) -> ImagePanel:
    """The image generator's panel (what ``Generator.create_panel`` returns)."""
    return ImagePanel(host, reuse_from_file=reuse_from_file)
