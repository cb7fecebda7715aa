"""The main window: generators grouped by kind in a sidebar, each with its page; the activity of every job; the
plugins; settings; and a status bar with the device, the loaded models and memory.

The window may be built before the third-party plugins are imported (:meth:`MainWindow.load_plugins`): it is on
screen at once, the sidebar and status bar say "Loading plugins…", and each plugin's generators arrive as its import
ends — a plugin whose import hangs is skipped after the plugin manager's bound; it never leaves a blank screen."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from desktop.api.models import ModelSource
from desktop.api.variations import supports_variations
from desktop.engine.engine import Engine
from desktop.engine.memory import human_bytes, process_rss
from desktop.models.first_run import needs_first_run
from desktop.plugins import PluginManager, Status
from desktop.ui.activity import ActivityView
from desktop.ui.diagnostics import ErrorLog, report
from desktop.ui.generator_page import GeneratorPage
from desktop.ui.page_frame import PageFrame, frame_of
from desktop.ui.state import load_state, save_state

log = logging.getLogger(__name__)
ROLE_ID = Qt.ItemDataRole.UserRole
PLUGINS_PAGE = "::plugins"
MODELS_PAGE = "::models"
GALLERY_PAGE = "::gallery"
HOST_PAGES = (GALLERY_PAGE, PLUGINS_PAGE, MODELS_PAGE)


class MainWindow(QMainWindow):
    error_reported = Signal(str)
    plugins_loaded = Signal()  # the third-party plugins pending when the window was built are all imported
    library_reconciled = Signal(object)  # the ReconcileReport of the library's tidying at start

    def __init__(self, manager: PluginManager, engine: Engine | None = None) -> None:
        super().__init__()
        self.plugins = manager
        self.manager = manager
        self.engine = engine if engine is not None else Engine(manager)
        self.errors = ErrorLog()
        self.devices: list[str] | None = None
        self.pages: dict[str, QWidget] = {}
        self.loading_plugins: list[str] = []  # third-party plugins being imported in the background
        self.plugin_loader = None
        self.preload_task: Any = None  # the latest warm-up of generators (desktop.ui.preload), once started
        self._preload_tasks: list[Any] = []  # every warm-up started (cancelled at quit)
        self._preloaded: set[str] = set()  # generators warmed up (or being warmed up)
        self._preload_on_show = False  # from the first warm-up on, showing a generator's page warms it up
        self._wanted_page: str | None = None  # the last session's page, its plugin still loading
        self._auto_page: str | None = None  # the page shown for it meanwhile (the user has not moved since)
        self.setWindowTitle(self.tr("Studiolo"))
        self.resize(1200, 780)

        self.sidebar = QTreeWidget(self)
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setHeaderHidden(True)
        self.sidebar.setAccessibleName(self.tr("Generators"))
        self.stack = QStackedWidget(self)  # each page in a PageFrame: see desktop.ui.page_frame
        self.empty_page = self._empty_page()
        self._add_page(self.empty_page)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.sidebar)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setCollapsible(0, False)
        splitter.setSizes([220, 980])
        self.setCentralWidget(splitter)

        self.activity = ActivityView(self.engine, self)
        self.activity_dock = QDockWidget(self.tr("Activity"), self)
        self.activity_dock.setObjectName("activity_dock")
        self.activity_dock.setWidget(self.activity)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.activity_dock)
        self.resizeDocks([self.activity_dock], [self.activity.default_height()], Qt.Orientation.Vertical)

        self._build_status_bar()
        self._build_menus()
        self._fill_sidebar()
        self.sidebar.currentItemChanged.connect(self._on_sidebar)
        QShortcut(QKeySequence("Ctrl+Return"), self, self.generate_current)
        QShortcut(QKeySequence("Ctrl+Enter"), self, self.generate_current)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.cancel_current)
        self.status_timer = QTimer(self)
        self.status_timer.timeout.connect(self.refresh_status)
        self.status_timer.start(2000)
        self.engine.job_finished.connect(self.refresh_status)
        self.engine.job_failed.connect(self.refresh_status)
        self.refresh_status()
        self.restore_state()
        self.welcome = None
        if needs_first_run(self.plugins, self.engine.settings):  # a few directory listings: cheap
            self.show_welcome()
        self.library_loader = self.reconcile_library()

    # -- building -------------------------------------------------------------------------------------------

    def _empty_page(self) -> QWidget:
        label = QLabel(self)
        label.setObjectName("empty_page")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setText(self.tr(
            "<h2>No generators installed</h2>"
            "<p>Studiolo runs generators that plugins provide. Install a plugin package "
            "(<code>pip install studiolo-…</code>) or enable a disabled one in <i>Plugins</i>, then start "
            "Studiolo again.</p><p>Writing your own takes one module: see <i>docs/plugins.md</i>.</p>"))
        return label

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel(self)
        self.device_label.setObjectName("status_device")
        self.models_label = QLabel(self)
        self.models_label.setObjectName("status_models")
        self.memory_label = QLabel(self)
        self.memory_label.setObjectName("status_memory")
        self.libraries_label = QLabel(self)
        self.libraries_label.setObjectName("status_libraries")
        self.plugins_label = QLabel(self)
        self.plugins_label.setObjectName("status_plugins")
        self.errors_button = QPushButton(self)
        self.errors_button.setObjectName("status_errors")
        self.errors_button.setFlat(True)
        self.errors_button.setAccessibleName(self.tr("Recent errors"))
        self.errors_button.setVisible(False)
        self.errors_button.clicked.connect(self.show_errors)
        for widget in (self.plugins_label, self.libraries_label, self.device_label, self.models_label,
                       self.memory_label, self.errors_button):
            bar.addPermanentWidget(widget)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu(self.tr("&File"))
        self.settings_action = QAction(self.tr("&Settings…"), self)
        self.settings_action.setShortcut(QKeySequence.StandardKey.Preferences)
        self.settings_action.triggered.connect(self.open_settings)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        quit_action = QAction(self.tr("&Quit"), self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        view_menu = self.menuBar().addMenu(self.tr("&View"))
        activity_action = self.activity_dock.toggleViewAction()  # hides the dock; the pages take its room
        activity_action.setShortcut(QKeySequence("Ctrl+J"))
        view_menu.addAction(activity_action)
        self.grid_action = QAction(self.tr("Explore &grid…"), self)  # the generator page's grid window
        self.grid_action.setShortcut(QKeySequence("Ctrl+Shift+G"))
        self.grid_action.triggered.connect(self.open_grid_current)
        view_menu.addAction(self.grid_action)
        self.interpolate_action = QAction(self.tr("&Interpolate…"), self)  # the page's interpolation window
        self.interpolate_action.setShortcut(QKeySequence("Ctrl+Shift+I"))
        self.interpolate_action.triggered.connect(self.open_interpolation_current)
        view_menu.addAction(self.interpolate_action)
        self.batch_action = QAction(self.tr("&Batch…"), self)  # the generator page's Batch window
        self.batch_action.setShortcut(QKeySequence("Ctrl+Shift+B"))
        self.batch_action.triggered.connect(self.open_batch_current)
        view_menu.addAction(self.batch_action)
        self.train_action = QAction(self.tr("&Train…"), self)  # the generator page's Training window
        self.train_action.setShortcut(QKeySequence("Ctrl+Shift+T"))
        self.train_action.triggered.connect(self.open_training_current)
        view_menu.addAction(self.train_action)
        self.stack.currentChanged.connect(lambda _index: self._update_interpolate_action())
        self._update_interpolate_action()
        self.page_actions: list[QAction] = []  # off while the welcome page is up (it ends the first run)
        pages = [(self.tr("&Gallery"), GALLERY_PAGE, "Ctrl+G")] if self.engine.library is not None else []
        pages += [(self.tr("&Models"), MODELS_PAGE, None), (self.tr("&Plugins"), PLUGINS_PAGE, None)]
        for text, page_id, shortcut in pages:  # (no library, no gallery: an engine that saves nothing)
            action = QAction(text, self)
            if shortcut:
                action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(lambda _checked=False, page_id=page_id: self.show_page(page_id))
            view_menu.addAction(action)
            self.page_actions.append(action)
        help_menu = self.menuBar().addMenu(self.tr("&Help"))
        self.diagnostics_action = QAction(self.tr("&Copy diagnostics"), self)
        self.diagnostics_action.triggered.connect(self.copy_diagnostics)
        help_menu.addAction(self.diagnostics_action)

    def _fill_sidebar(self) -> None:
        by_kind: dict[str, QTreeWidgetItem] = {}
        for gid, generator in sorted(self.plugins.generators.items(), key=lambda kv: (kv[1].kind, kv[1].name)):
            parent = by_kind.get(generator.kind)
            if parent is None:
                parent = by_kind[generator.kind] = QTreeWidgetItem(self.sidebar, [self.tr(generator.kind.title())])
                parent.setFlags(Qt.ItemFlag.ItemIsEnabled)
                parent.setExpanded(True)
            item = QTreeWidgetItem(parent, [generator.name])
            item.setData(0, ROLE_ID, gid)
            item.setToolTip(0, generator.description or gid)
        manage = QTreeWidgetItem(self.sidebar, [self.tr("Studiolo")])
        manage.setFlags(Qt.ItemFlag.ItemIsEnabled)
        manage.setExpanded(True)
        failed = sum(r.status == Status.FAILED for r in self.plugins.plugins.values())
        if self.engine.library is not None:
            gallery_item = QTreeWidgetItem(manage, [self.tr("Gallery")])
            gallery_item.setData(0, ROLE_ID, GALLERY_PAGE)
        models_item = QTreeWidgetItem(manage, [self.tr("Models")])
        models_item.setData(0, ROLE_ID, MODELS_PAGE)
        plugins_item = QTreeWidgetItem(manage, [self.tr("Plugins") + (f" ⚠ {failed}" if failed else "")])
        plugins_item.setData(0, ROLE_ID, PLUGINS_PAGE)
        if self.loading_plugins:
            loading = QTreeWidgetItem(self.sidebar, [self.tr("Loading plugins…")])
            loading.setFlags(Qt.ItemFlag.NoItemFlags)
            loading.setToolTip(0, ", ".join(self.loading_plugins))
        self._fit_sidebar()
        self._show_widget(self.empty_page)

    def _refill_sidebar(self) -> None:
        """Fill the sidebar again (generators came or went), keeping the page on screen."""
        current = self.stack.currentWidget()
        current_id = self.current_page_id()
        self.sidebar.blockSignals(True)
        self.sidebar.clear()
        self._fill_sidebar()
        for item in self._items():
            if current_id is not None and item.data(0, ROLE_ID) == current_id:
                self.sidebar.setCurrentItem(item)
        self.sidebar.blockSignals(False)
        self.stack.setCurrentWidget(current)

    # -- pages ---------------------------------------------------------------------------------------------

    def page(self, page_id: str) -> QWidget:
        """The page of a generator or of the host (plugins, models), built on first use."""
        if page_id not in self.pages:
            if page_id == PLUGINS_PAGE:
                from desktop.ui.plugins_view import PluginsView

                widget: QWidget = PluginsView(self.plugins, self)
                widget.message.connect(self.show_message)
                widget.enabled_changed.connect(self._on_plugin_toggled)
            elif page_id == GALLERY_PAGE and self.engine.library is not None:
                from desktop.library import Gallery
                from desktop.ui.gallery import GalleryView

                widget = GalleryView(Gallery(self.engine.library), self, engine=self.engine)
                widget.reuse_requested.connect(self.apply_params)
                widget.can_vary = self._can_vary
                widget.vary_requested.connect(self.vary)
                widget.input_targets = self._input_targets
                widget.use_as_input_requested.connect(self.use_as_input)
                widget.train_requested.connect(self.train_on)
                widget.message.connect(self.show_message)
                self.engine.job_finished.connect(widget.refresh)
                self.engine.job_cancelled.connect(widget.refresh)  # a cancelled job's partial output is saved too
            elif page_id == MODELS_PAGE:
                from desktop.ui.models_view import ModelsView

                widget = ModelsView(self.engine, self)
                widget.message.connect(self.show_message)
                widget.models_changed.connect(self._on_models_changed)
                current = self.current_page()
                if isinstance(current, GeneratorPage):
                    widget.set_generator(current.generator.id)
            else:
                widget = GeneratorPage(self.engine, self.plugins.generator(page_id), self)
                widget.message.connect(self.show_message)
                saved = self._saved_pages.get(page_id)
                if isinstance(saved, dict):
                    widget.restore(saved)
            self.pages[page_id] = widget
            self._add_page(widget)
        return self.pages[page_id]

    def _add_page(self, widget: QWidget) -> None:
        self.stack.addWidget(PageFrame(widget, self.stack))

    def _show_widget(self, widget: QWidget) -> None:
        """Bring ``widget`` (a page added by :meth:`_add_page`) to the front."""
        self.stack.setCurrentWidget(frame_of(widget))

    def _fit_sidebar(self) -> None:
        """Keep the sidebar at least as wide as its longest name (with its indentation), so that no name is cut."""
        self.sidebar.resizeColumnToContents(0)
        frame = 2 * self.sidebar.frameWidth()
        scroll_bar = self.sidebar.verticalScrollBar().sizeHint().width()
        self.sidebar.setMinimumWidth(self.sidebar.sizeHintForColumn(0) + frame + scroll_bar)

    def show_page(self, page_id: str) -> QWidget:
        widget = self.page(page_id)
        self._show_widget(widget)
        if self._preload_on_show and page_id in self.plugins.generators:
            self._warm_up([page_id])
        for item in self._items():
            if item.data(0, ROLE_ID) == page_id and self.sidebar.currentItem() is not item:
                self.sidebar.setCurrentItem(item)
        return widget

    def current_page(self) -> QWidget:
        frame = self.stack.currentWidget()
        return frame.page() if isinstance(frame, PageFrame) else frame

    def _items(self) -> list[QTreeWidgetItem]:
        items = []
        for i in range(self.sidebar.topLevelItemCount()):
            top = self.sidebar.topLevelItem(i)
            items += [top.child(j) for j in range(top.childCount())]
        return items

    def show_welcome(self) -> None:
        """The first run's welcome page, in place of the generators until the user is done with it."""
        from desktop.ui.welcome import WelcomePage

        self.welcome = WelcomePage(self.plugins, self.engine.settings, self,
                                   builder=lambda generator: self.engine.runner(generator.id).build_demo)
        self.welcome.finished.connect(self._on_welcome_finished)
        self.welcome.activity.connect(lambda text: self.statusBar().showMessage(text, 10_000))
        self.welcome.downloads_finished.connect(self._on_first_downloads)
        self._add_page(self.welcome)
        self._show_widget(self.welcome)
        self.sidebar.setEnabled(False)
        for action in self.page_actions:
            action.setEnabled(False)

    @Slot()
    def _on_welcome_finished(self) -> None:
        self.sidebar.setEnabled(True)  # the page stays in the stack: its downloads may still be running
        for action in self.page_actions:
            action.setEnabled(True)
        item = self.sidebar.currentItem()
        page_id = item.data(0, ROLE_ID) if item is not None else None
        if page_id:
            self.show_page(page_id)
        else:
            self._show_widget(self.empty_page)
        self._on_models_changed()

    @Slot(object)
    def _on_first_downloads(self, failures: list) -> None:
        for failure in failures:
            self.report_error(failure, dialog=False)
        if not failures:
            self.show_message(self.tr("The models you chose are downloaded."))
        self._on_models_changed()

    @Slot(str, bool)
    def _on_plugin_toggled(self, name: str, enabled: bool) -> None:
        """Apply an enable/disable at once: generators of a disabled plugin leave (their jobs cancelled, their
        pages closed), those of an enabled one arrive in the sidebar."""
        added, removed = self.plugins.apply_enabled(name)
        for gid in removed:
            self.engine.retire_generator(gid)
            page = self.pages.pop(gid, None)
            if page is not None:
                frame = frame_of(page)
                self.stack.removeWidget(frame)
                frame.deleteLater()  # and the page in it
        current = self.current_page_id()
        self._refill_sidebar()
        self.show_page(current if current is not None else PLUGINS_PAGE)
        view = self.pages.get(PLUGINS_PAGE)
        if view is not None:
            view.refresh()
        if added or removed:
            names = ", ".join(sorted(added or removed))
            text = (self.tr("Plugin %1 enabled: %2 ready.") if enabled else
                    self.tr("Plugin %1 disabled: %2 removed.")).replace("%1", name).replace("%2", names)
            self.show_message(text)

    @Slot()
    def _on_models_changed(self) -> None:
        """Models were downloaded, imported or removed: the generator pages list them again."""
        for widget in self.pages.values():
            if isinstance(widget, GeneratorPage) and widget.model_chooser is not None:  # None: uses no model
                widget.model_chooser.refresh_installed(allow_pickle=self.engine.settings.allow_pickle)

    @Slot(QTreeWidgetItem, QTreeWidgetItem)
    def _on_sidebar(self, current: QTreeWidgetItem | None, _previous: QTreeWidgetItem | None) -> None:
        if current is not None and current.data(0, ROLE_ID):
            self.show_page(current.data(0, ROLE_ID))

    @Slot()
    def generate_current(self) -> None:
        page = self.current_page()
        if isinstance(page, GeneratorPage):
            page.generate()

    @Slot()
    def open_grid_current(self) -> Any:
        """The grid window of the generator on screen (Ctrl+Shift+G); None, and a note, on another page."""
        page = self.current_page()
        if isinstance(page, GeneratorPage):
            return page.open_grid()
        self.show_message(self.tr("Open a generator's page first: a grid explores that generator."))
        return None

    @Slot()
    def open_batch_current(self) -> Any:
        """The Batch window of the generator on screen (Ctrl+Shift+B); None, and a note, on another page."""
        page = self.current_page()
        if isinstance(page, GeneratorPage):
            return page.open_batch()
        self.show_message(self.tr("Open a generator's page first: a batch runs that generator."))
        return None

    @Slot()
    def open_training_current(self) -> Any:
        """The Training window of the generator on screen (Ctrl+Shift+T); None, and a note, on another page or for
        a generator that trains nothing."""
        page = self.current_page()
        if isinstance(page, GeneratorPage) and getattr(page.generator, "training_kinds", ()):
            return page.open_training()
        self.show_message(self.tr("Open the page of a generator that can train (such as the image or text "
                                  "generator) first."))
        return None

    @Slot(object)
    def train_on(self, request: Any) -> Any:
        """The gallery's "Train a LoRA on these…": the Training window of the generator that trains on such items
        (a :class:`~desktop.ui.training.gallery.TrainRequest`), with their files as its data."""
        from desktop.ui.training.gallery import trainer_for

        found = trainer_for(self.plugins.generators.values(), request)
        if found is None:
            self.show_message(self.tr("No enabled generator trains on these items; see Plugins."), True)
            return None
        generator_id, kind = found
        page = self.show_page(generator_id)
        return page.open_training(request.paths, kind)

    @Slot()
    def open_interpolation_current(self) -> Any:
        """The interpolation window of the generator on screen (Ctrl+Shift+I); None, and a note, on another page
        or for a generator that offers no interpolation."""
        page = self.current_page()
        if isinstance(page, GeneratorPage) and getattr(page.generator, "offers_interpolation", False):
            return page.open_interpolation()
        self.show_message(self.tr("Open the page of a generator that offers interpolation (such as the image "
                                  "generator) first."))
        return None

    def _update_interpolate_action(self) -> None:
        """Interpolate… is offered on the page of a generator that offers it only (its tooltip says why not)."""
        page = self.current_page()
        offered = isinstance(page, GeneratorPage) and bool(getattr(page.generator, "offers_interpolation", False))
        self.interpolate_action.setEnabled(offered)
        trains = isinstance(page, GeneratorPage) and bool(getattr(page.generator, "training_kinds", ()))
        self.train_action.setEnabled(trains)
        self.interpolate_action.setToolTip(
            self.tr("Interpolate between two seeds and/or prompts") if offered else
            self.tr("Only the page of a generator that offers interpolation (such as the image generator) can"))

    @Slot()
    def cancel_current(self) -> None:
        page = self.current_page()
        if isinstance(page, GeneratorPage):
            page.cancel()

    def _can_vary(self, generator_id: str) -> bool:
        generator = self.plugins.generators.get(generator_id)
        return generator is not None and supports_variations(generator.Params)

    def vary(self, generator_id: str, recipe: Any, strength: float) -> str | None:
        """"Vary subtle / strong" from the gallery: queue the recipe's params again (one output: ``batch_size``
        and ``batch_count`` fields set to 1) with a fresh variation seed at ``strength``, the recipe's seed and
        model. The job id, or None (the reason in the status bar)."""
        import dataclasses

        from desktop.api import StudioloError, from_json, vary_params

        generator = self.plugins.generators.get(generator_id)
        if generator is None or not supports_variations(generator.Params):
            self.show_message(self.tr("The generator %1 that made this is not installed, not enabled or cannot "
                                      "vary its outputs; see Plugins.").replace("%1", generator_id), True)
            return None
        try:
            params = from_json(generator.Params, recipe.params)
            single = {f.name: 1 for f in dataclasses.fields(params) if f.name in ("batch_size", "batch_count")}
            params = vary_params(dataclasses.replace(params, **single), strength)
            job = self.engine.submit(generator_id, params, model=recipe.model, seed=recipe.seed)
        except StudioloError as exc:
            self.show_message(self.tr("Cannot vary it: %1").replace("%1", str(exc)), True)
            return None
        self.show_message(self.tr("Queued a variation (variation seed %1, strength %2); it appears in the gallery "
                                  "when done.").replace("%1", str(params.variation_seed))
                          .replace("%2", f"{strength:g}"), False)
        return job.id

    @Slot(str, object)
    def apply_params(self, generator_id: str, params: Any) -> None:
        """Reuse: open the generator's page filled with ``params`` — a :class:`~desktop.library.Recipe` (params, seed
        and model: the page can make the same again), or a Params instance or its JSON (params only)."""
        if generator_id not in self.plugins.generators:
            self.show_message(self.tr("The generator %1 that made this is not installed or not enabled; see Plugins.")
                              .replace("%1", generator_id), True)
            return
        page = self.show_page(generator_id)
        from desktop.library import Recipe

        if isinstance(params, Recipe):
            page.apply_recipe(params)
        else:
            page.host.apply_params(params)

    def _input_targets(self, kind: str) -> list[Any]:
        """The gallery's "Use as input" choices for an item of ``kind``, from the generators enabled now."""
        from desktop.ui.gallery.inputs import input_targets

        return input_targets(self.plugins.generators.values(), kind)

    @Slot(object)
    def use_as_input(self, request: Any) -> None:
        """The gallery's "Use as input": open the generator's page starting from the item's file (an
        :class:`~desktop.ui.gallery.inputs.InputRequest`)."""
        if request.generator_id not in self.plugins.generators:
            self.show_message(self.tr("The generator %1 is not installed or not enabled; see Plugins.")
                              .replace("%1", request.generator_id), True)
            return
        page = self.show_page(request.generator_id)
        page.use_as_input(request.path, request.mode, request.recipe)

    # -- status, errors, diagnostics ----------------------------------------------------------------------

    def devices_text(self) -> str:
        if self.devices is None:
            return self.tr("not probed yet")
        return ", ".join(d.upper() if d != "mps" else "Apple MPS" for d in self.devices)

    @Slot()
    @Slot(str, object)
    @Slot(str, str)
    def refresh_status(self, *_args: object) -> None:
        setting = self.engine.settings.device
        chosen = self.tr("automatic") if setting == "auto" else setting
        if self.devices is not None and setting == "auto":
            chosen = self.devices[0].upper()
        self.device_label.setText(self.tr("Device: %1").replace("%1", chosen))
        loaded = self.engine.cache.loaded()
        size = sum(m.size for m in loaded)
        self.models_label.setText(self.tr("Models loaded: %1 (%2)").replace("%1", str(len(loaded)))
                                  .replace("%2", human_bytes(size)))
        self.models_label.setToolTip("\n".join(f"{m.key.generator_id}: {m.key.model or '—'} on {m.key.device}"
                                               for m in loaded))
        rss = process_rss()  # the window's process, plus its generators' worker processes (a /proc read each)
        workers = [pid for pid in self.engine.worker_processes().values() if pid is not None]
        total = (rss or 0) + sum(process_rss(pid) or 0 for pid in workers)
        self.memory_label.setText(self.tr("Memory: %1").replace("%1", human_bytes(total)) if rss else "")
        tip = self.tr("Studiolo's window: %1; generators' worker processes: %2")
        self.memory_label.setToolTip(tip.replace("%1", human_bytes(rss or 0))
                                     .replace("%2", human_bytes(total - (rss or 0))))

    @Slot(str, bool)
    def show_message(self, text: str, error: bool = False) -> None:
        self.statusBar().showMessage(text, 10_000)
        if error:
            self.report_error(text, dialog=False)

    def report_error(self, text: str, *, dialog: bool = True) -> None:
        """Record an error for the status bar and diagnostics; show it (without blocking) if ``dialog``."""
        self.errors.add(text)
        count = len(self.errors.entries)
        self.errors_button.setText(self.tr("⚠ %1 error(s)").replace("%1", str(count)))
        self.errors_button.setVisible(True)
        self.error_reported.emit(text)
        if dialog:
            box = QMessageBox(QMessageBox.Icon.Critical, self.tr("Studiolo hit an error"),
                              self.tr("Something went wrong. Your work is kept; the details are in the log."),
                              QMessageBox.StandardButton.Ok, self)
            box.setDetailedText(text)
            box.setObjectName("error_dialog")
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    @Slot(str, bool)
    def on_error_reported(self, text: str, dialog: bool) -> None:
        self.report_error(text, dialog=dialog)

    @Slot()
    def show_errors(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, self.tr("Recent errors"), "\n".join(self.errors.entries),
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    @Slot()
    def copy_diagnostics(self) -> str:
        text = report(self)
        QGuiApplication.clipboard().setText(text)
        self.statusBar().showMessage(self.tr("Diagnostics copied to the clipboard."), 5000)
        return text

    @Slot()
    def open_settings(self) -> None:
        from desktop.ui.settings_dialog import SettingsDialog

        dialog = SettingsDialog(self.engine.settings, self)
        dialog.settings_changed.connect(self._on_settings_changed)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        self.settings_dialog = dialog

    @Slot()
    def _on_settings_changed(self) -> None:
        self.engine.apply_settings()
        self.refresh_status()
        for widget in self.pages.values():  # the servers may have changed: the remote generators ask them again
            chooser = widget.model_chooser if isinstance(widget, GeneratorPage) else None
            if chooser is not None and ModelSource.REMOTE in chooser.generator.model_sources:
                chooser.refresh_installed(allow_pickle=self.engine.settings.allow_pickle)
        self.show_message(self.tr("Settings saved."))

    # -- third-party plugins, after the window shows ---------------------------------------------------------

    def load_plugins(self) -> None:
        """Import the plugins the manager has pending, one after the other off the GUI thread (each waited for
        at most the manager's bound), registering each here as it arrives; then preload the generators'
        libraries. With nothing pending, preloads at once."""
        pending = self.plugins.pending()
        if not pending:
            self.preload_libraries()
            return
        from desktop.ui.tasks import TaskGroup  # the UI's one helper for blocking work

        self.loading_plugins = list(pending)
        self.plugin_loader = TaskGroup("plugins", owner=self)  # one thread: one import after the other
        self._refill_sidebar()
        self._show_loading()
        for name in pending:
            self.plugin_loader.submit(partial(self.plugins.import_pending, name),
                                      partial(self._on_plugin_imported, name),
                                      partial(self._on_plugin_import_error, name))

    def _show_loading(self) -> None:
        if self.loading_plugins:
            self.plugins_label.setText(self.tr("Loading plugin %1…").replace("%1", self.loading_plugins[0]))
        else:
            self.plugins_label.setText("")

    def _on_plugin_imported(self, name: str, attempt: object) -> None:
        added = self.plugins.finish_import(name, attempt)  # type: ignore[arg-type]
        record = self.plugins.plugins.get(name)
        if record is not None and record.status == Status.FAILED:
            self.show_message(self.tr("Plugin %1 failed to load: %2").replace("%1", name)
                              .replace("%2", record.error or ""))
        self._plugin_done(name, bool(added))

    def _on_plugin_import_error(self, name: str, error: BaseException) -> None:
        record = self.plugins.plugins.get(name)
        if record is not None and record.status == Status.LOADING:
            record.fail(f"not loaded: {type(error).__name__}: {error}")
        self._plugin_done(name, False)

    def _plugin_done(self, name: str, changed: bool) -> None:
        if name in self.loading_plugins:
            self.loading_plugins.remove(name)
        self._refill_sidebar()
        self._show_loading()
        if changed:
            self._follow_arrivals()
        view = self.pages.get(PLUGINS_PAGE)
        if view is not None:
            view.refresh()
        if not self.loading_plugins:
            self.preload_libraries()
            self.plugins_loaded.emit()

    def _follow_arrivals(self) -> None:
        """New generators: open the last session's page when its plugin arrived (or a first generator instead of
        the empty page), unless the user has moved on meanwhile or the welcome page is up."""
        if not self.sidebar.isEnabled() or self.current_page_id() != self._auto_page:
            return
        target = None
        if self._wanted_page in self.plugins.generators:
            target, self._wanted_page = self._wanted_page, None
        elif self.current_page() is self.empty_page and self.plugins.generators:
            target = sorted(self.plugins.generators)[0]
        if target is not None:
            self.show_page(target)
            self._auto_page = target

    # -- background import --------------------------------------------------------------------------------

    def preload_libraries(self) -> None:
        """Warm up the generator on screen ahead of its first job (once the window is shown and the plugins are
        loaded), shown in the status bar: start its worker process and import its heavy libraries there (for a
        generator that runs in this process: here, on a task's thread). From then on, showing another generator's
        page warms that one up. The others start with their first job: a worker process holds hundreds of MB once
        torch is in it, so warming every installed generator at start would cost gigabytes and a minute of CPU."""
        self._preload_on_show = True
        current = self.current_page_id()
        self._warm_up([current] if current in self.plugins.generators else [])

    def _warm_up(self, generator_ids: list[str]) -> None:
        """Preload each of ``generator_ids`` not warmed up yet (see :meth:`preload_libraries`)."""
        from desktop.ui.preload import plan_preload, start_preload

        wanted = {gid: self.plugins.generators[gid] for gid in generator_ids
                  if gid in self.plugins.generators and gid not in self._preloaded}
        self._preloaded.update(wanted)
        modules, workers = plan_preload(self.engine, wanted)
        if not modules and not workers:
            if self.preload_task is None:
                self.libraries_label.setText("")
            return
        self.libraries_label.setText(self.tr("Loading libraries…"))
        self.preload_task = start_preload(modules, self, engine=self.engine, workers=workers)
        self._preload_tasks.append(self.preload_task)
        self.preload_task.reported.connect(self._on_preloading)
        self.preload_task.finished.connect(self._on_preloaded)

    @Slot(object)
    def _on_preloading(self, module: str) -> None:
        self.libraries_label.setText(self.tr("Loading %1…").replace("%1", module))

    @Slot(object)
    def _on_preloaded(self, preloaded: Any) -> None:
        seconds, failures, devices = preloaded.seconds, preloaded.failures, preloaded.devices
        self.libraries_label.setText(self.tr("Libraries ready") if not failures else self.tr("Libraries: %1 failed")
                                     .replace("%1", str(len(failures))))
        self.libraries_label.setToolTip("\n".join(failures) or self.tr("Loaded in %1 s").replace(
            "%1", f"{seconds:.1f}"))
        for failure in failures:
            self.report_error(failure, dialog=False)
        if devices:
            self.devices = devices
        self.refresh_status()

    # -- state ----------------------------------------------------------------------------------------------

    def restore_state(self) -> None:
        state = load_state()
        self._saved_pages = state.get("pages", {}) if isinstance(state.get("pages"), dict) else {}
        geometry = state.get("geometry")
        if isinstance(geometry, str):
            self.restoreGeometry(QByteArray.fromHex(geometry.encode()))
        dock_state = state.get("window_state")
        if isinstance(dock_state, str):
            self.restoreState(QByteArray.fromHex(dock_state.encode()))
        last = state.get("last_page")
        if isinstance(last, str) and (last in self.plugins.generators or last in HOST_PAGES):
            self.show_page(last)
        elif self.plugins.generators:
            self.show_page(sorted(self.plugins.generators)[0])
        if isinstance(last, str) and last not in self.plugins.generators and last not in HOST_PAGES:
            self._wanted_page = last  # maybe a generator of a plugin not imported yet
        self._auto_page = self.current_page_id()

    def current_page_id(self) -> str | None:
        page = self.current_page()
        return next((pid for pid, widget in self.pages.items() if widget is page), None)

    def save_state(self) -> None:
        pages = dict(self._saved_pages)
        for page_id, widget in self.pages.items():
            if isinstance(widget, GeneratorPage):
                pages[page_id] = widget.state()
        save_state({
            "geometry": bytes(self.saveGeometry().toHex()).decode(),
            "window_state": bytes(self.saveState().toHex()).decode(),
            "last_page": (self._wanted_page if self._wanted_page and self.current_page_id() == self._auto_page
                          else self.current_page_id()),
            "pages": pages,
        })

    def reconcile_library(self) -> Any:
        """Tidy what an interrupted save left in the outputs folder (``desktop.library.reconciliation``) on the
        ``reconcile`` pool of :mod:`desktop.ui.tasks`; ``library_reconciled`` follows. Returns the task group (None: no
        library)."""
        library, root = self.engine.library, getattr(self.engine.services.store, "root", None)
        if library is None or root is None:
            return None
        from desktop.library import reconciliation
        from desktop.ui.tasks import TaskGroup

        def done(report: Any) -> None:
            if report.changed:
                self.show_message(report.summary())
                if GALLERY_PAGE in self.pages:
                    self.pages[GALLERY_PAGE].refresh()
            self.library_reconciled.emit(report)

        loader = TaskGroup("reconcile", owner=self)
        loader.submit(lambda: reconciliation.reconcile(library, root), done, lambda exc: self.report_error(
            self.tr("Could not tidy the library: %1").replace("%1", str(exc)), dialog=False))
        return loader

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt)
        self.save_state()
        self.status_timer.stop()
        if self.library_loader is not None:
            self.library_loader.shutdown()  # a tidying under way finishes (it is short); its result is dropped
        if self.plugin_loader is not None:
            self.plugins.cancel_imports()  # a hung import is let go (its thread ends with the process)
            self.plugin_loader.shutdown()
        if self.welcome is not None:
            self.welcome.shutdown()
        gallery = self.pages.get(GALLERY_PAGE)
        if gallery is not None:
            gallery.shutdown()
        for page in self.pages.values():  # grid windows: their grids' jobs are cancelled with the engine's below
            grid_window = getattr(page, "grid_window", None)
            if grid_window is not None:
                grid_window.shutdown()
                grid_window.close()
            interpolate_window = getattr(page, "interpolate_window", None)
            if interpolate_window is not None:
                interpolate_window.shutdown()
                interpolate_window.close()
            batch_window = getattr(page, "batch_window", None)
            if batch_window is not None:  # a batch running is cancelled (its finished items stay, resumable)
                batch_window.shutdown()
                batch_window.close()
            training_window = getattr(page, "training_window", None)
            if training_window is not None:  # a training under way is paused (its checkpoint resumes it)
                training_window.shutdown()
                training_window.close()
        plugins_page = self.pages.get(PLUGINS_PAGE)
        if plugins_page is not None:
            plugins_page.shutdown(timeout_ms=10_000)  # a dry run is cancelled; a running pip install finishes
        models = self.pages.get(MODELS_PAGE)
        if models is not None:
            models.shutdown(timeout=10)  # cancels its downloads (each keeps its partial file for a resume)
        for task in self._preload_tasks:
            task.cancel()  # it starts no further worker process (the engine ends those it started)
        if not self.engine.shutdown(timeout=10):
            log.error("a generator did not stop within 10 s of quitting")
        # A preload still importing here is left running (an import cannot be interrupted, and nobody needs it now):
        # desktop.ui.tasks keeps it until it ends, and the app does not wait for it at exit.
        super().closeEvent(event)

