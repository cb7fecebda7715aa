"""``GalleryView``: the Gallery page — every item Studiolo made, newest first, with filters, details and actions.

Layout: the :class:`FilterBar` on top, a toolbar, then the tile grid (a ``QListView`` of fixed-size tiles, flowing
left to right and wrapping, over the lazy :class:`GalleryModel`) beside the :class:`DetailsPane`, and a status line
(count, last message, Undo).

Threads: every library query and write, every file read (copying an image or a text, exporting) runs on the
``library`` pool of :mod:`desktop.ui.tasks` (one thread, in order); thumbnails on its ``thumbnails`` pool. The GUI
thread only hands work out and shows what comes back.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QItemSelectionModel, QMimeData, QModelIndex, QPoint, QProcess, QSize, Qt, QUrl, Signal, Slot
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QImage, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.api.variations import VARY_STRONG, VARY_SUBTLE
from desktop.ui.gallery.delegate import TileDelegate
from desktop.ui.gallery.details import DetailsPane
from desktop.ui.gallery.filters import FilterBar
from desktop.ui.gallery.inputs import InputRequest, InputTarget
from desktop.ui.gallery.model import GalleryModel, Row, load_rows_by_id
from desktop.ui.gallery.player import AudioPlayer
from desktop.ui.gallery.thumbnails import ThumbnailService
from desktop.ui.tasks import TaskGroup
from desktop.ui.theme import mark_error

if TYPE_CHECKING:
    from desktop.library.gallery import Gallery, ItemDetails

__all__ = ["GalleryView"]

MAX_OPEN = 10          # opening more files at once than this is surely a mistake
MAX_COPY_TEXT = 10_000_000
SINGLE_PASS_ROWS = 50_000


class _TrashCommand(QUndoCommand):
    """Move items to the trash (redo) or back (undo), through the view's loader."""

    def __init__(self, view: GalleryView, item_ids: Sequence[int], text: str) -> None:
        super().__init__(text)
        self._view = view
        self._ids = list(item_ids)

    def redo(self) -> None:
        self._view._write_trash(self._ids, trash=True)

    def undo(self) -> None:
        self._view._write_trash(self._ids, trash=False)


class GalleryView(QWidget):
    """The gallery of a :class:`~desktop.library.gallery.Gallery`.

    Signals: ``reuse_requested(generator_id, recipe)`` — open that generator's page filled with the
    :class:`~desktop.library.Recipe` (params, seed, model) that made the item (a
    JSON dict); ``use_as_input_requested(request)`` — open a generator's page starting from the item's file (an
    :class:`~desktop.ui.gallery.inputs.InputRequest`; the choices come from :attr:`input_targets`, which the window
    sets); ``message(text, is_error)`` — for the status bar; ``exported(paths)`` — files written by an
    export. ``refresh()`` runs the query again (call it when a job finished).
    """

    reuse_requested = Signal(str, object)
    vary_requested = Signal(str, object, float)
    """``(generator_id, recipe, strength)``: "Vary subtle / strong" — make a variation of the item (its
    :class:`~desktop.library.Recipe`, the seed being the item's own) at that strength (the window submits it)."""
    use_as_input_requested = Signal(object)
    train_requested = Signal(object)
    """``(request)``: "Train a LoRA on these…" — open a Training window with the selected items' files as its data
    (a :class:`~desktop.ui.training.gallery.TrainRequest`; the window picks the generator)."""
    message = Signal(str, bool)
    exported = Signal(list)

    def __init__(self, gallery: Gallery, parent: QWidget | None = None, *,
                 thumbnails: ThumbnailService | None = None, engine: Any = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_view")
        self.gallery = gallery
        self.loader = TaskGroup("library", owner=self)  # one thread: a write, then a query, sees the write
        self.thumbnails = thumbnails if thumbnails is not None else ThumbnailService(parent=self)
        self.model = GalleryModel(gallery, self.loader, self.thumbnails, parent=self)
        self.undo_stack = QUndoStack(self)
        self.player = AudioPlayer(self)
        self.url_opener: Callable[[QUrl], bool] = QDesktopServices.openUrl
        self._keep_ids: set[int] = set()
        self._keep_current: int | None = None
        self._details_for: int | None = None
        self._confirm: QMessageBox | None = None
        self._dialog: QFileDialog | None = None
        self._scroll_to: int | None = None  # the row of an item being shown (show_item), once the count is back
        self.input_targets: Callable[[str], list[InputTarget]] = lambda _kind: []
        """The "Use as input" choices for an item of a kind (the window gives the generators' ones)."""
        self.can_vary: Callable[[str], bool] = lambda _generator_id: False
        """Whether a generator's outputs can be varied (the window says: its params have a variation seed)."""
        self._build()
        self._connect()
        if engine is not None:
            self.set_engine(engine)
        self.refresh()

    # -- building --------------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.filters = FilterBar(self)

        self.delegate = TileDelegate(parent=self)
        self.list = QListView(self)
        self.list.setObjectName("gallery_list")
        self.list.setAccessibleName(self.tr("Gallery items"))
        # A grid of fixed tiles: list mode flowing left to right and wrapping, at a fixed grid size. (Icon mode
        # lays out the same grid but keeps a free-movement record per item: 3-4 times slower at 10,000 items.)
        self.list.setViewMode(QListView.ViewMode.ListMode)
        self.list.setFlow(QListView.Flow.LeftToRight)
        self.list.setWrapping(True)
        self.list.setMovement(QListView.Movement.Static)
        self.list.setResizeMode(QListView.ResizeMode.Adjust)
        self.list.setUniformItemSizes(True)
        self.list.setBatchSize(500)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.list.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list.setDragEnabled(True)
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.list.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.list.setItemDelegate(self.delegate)
        self.list.setGridSize(self.delegate.tile_size(self.list.font()) + QSize(8, 8))
        self.list.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setModel(self.model)

        self.details = DetailsPane(self.thumbnails, self)
        self.details.setMinimumWidth(260)
        self.details_area = QScrollArea(self)  # a short window scrolls the details rather than squeezing them
        self.details_area.setObjectName("gallery_details_area")
        self.details_area.setFrameShape(QFrame.Shape.NoFrame)
        self.details_area.setWidgetResizable(True)
        self.details_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.details_area.setWidget(self.details)
        self.details_area.setMinimumWidth(260 + self.details_area.verticalScrollBar().sizeHint().width())

        self.actions_by_name: dict[str, QAction] = {}
        self.toolbar = QToolBar(self)
        self.toolbar.setObjectName("gallery_toolbar")
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        list_keys = Qt.ShortcutContext.WidgetWithChildrenShortcut
        for name, text, tip, slot, keys in (
            ("open", self.tr("Open"), self.tr("Open the selected file in its application (Enter)"),
             self.open_selected, [QKeySequence(Qt.Key.Key_Return), QKeySequence(Qt.Key.Key_Enter)]),
            ("play", self.tr("Play"), self.tr("Play the selected audio clip"), self.play_selected, []),
            ("reveal", self.tr("Show in folder"), self.tr("Show the selected file in the file manager"),
             self.reveal_selected, []),
            ("copy", self.tr("Copy"), self.tr("Copy the selected item to the clipboard (Ctrl+C)"),
             self.copy_selected, [QKeySequence(QKeySequence.StandardKey.Copy)]),
            ("export", self.tr("Save as…"), self.tr("Save a copy of the selected files elsewhere"),
             self.export_dialog, []),
            ("export_dataset", self.tr("Export as dataset…"),
             self.tr("Write the selected items as a dataset the Hugging Face datasets library loads (a folder "
                     "with their files, metadata.jsonl, a dataset card and checksums)"),
             self.export_dataset_dialog, []),
            ("favourite", self.tr("★ Favourite"), self.tr("Mark or unmark the selected items as favourites"),
             self.toggle_favourite_selected, []),
            ("reuse", self.tr("Reuse parameters"),
             self.tr("Open the generator of the selected item with its parameters"), self.reuse_selected, []),
            ("vary_subtle", self.tr("Vary subtle"), self.tr("Make a slight variation of the selected item"),
             lambda: self.vary_selected(VARY_SUBTLE), []),
            ("vary_strong", self.tr("Vary strong"), self.tr("Make a strong variation of the selected item"),
             lambda: self.vary_selected(VARY_STRONG), []),
            ("reproduce", self.tr("Reproduce"),
             self.tr("Run the selected item's job again and say whether the result is identical"),
             self.reproduce_selected, []),
            ("train", self.tr("Train a LoRA on these…"),
             self.tr("Open the Training window with the selected pictures or texts as what it learns from"),
             self.train_selected, []),
            ("trash", self.tr("Move to trash"), self.tr("Move the selected items to the trash (Delete)"),
             self.delete_key, [QKeySequence(QKeySequence.StandardKey.Delete)]),
            ("restore", self.tr("Restore"), self.tr("Take the selected items out of the trash"),
             self.restore_selected, []),
            ("delete_now", self.tr("Delete for good"), self.tr("Delete the selected items and their files now"),
             lambda: self.delete_selected_now(confirm=True), []),
            ("empty_trash", self.tr("Empty trash"), self.tr("Delete every item in the trash and its file"),
             lambda: self.empty_trash(confirm=True), []),
        ):
            action = QAction(text, self)
            action.setObjectName(f"gallery_action_{name}")
            action.setToolTip(tip)
            action.setStatusTip(tip)
            if keys:
                action.setShortcuts(keys)
                action.setShortcutContext(list_keys)
                self.list.addAction(action)
            action.triggered.connect(lambda _checked=False, run=slot: run())
            self.actions_by_name[name] = action
            if name not in ("delete_now", "vary_subtle", "vary_strong", "export_dataset", "reproduce",
                            "train"):  # the menu's
                self.toolbar.addAction(action)
        self.input_menu = QMenu(self.tr("Use as input"), self)
        self.input_menu.setObjectName("gallery_use_as_input_menu")
        self.input_menu.aboutToShow.connect(self._fill_input_menu)
        use_as_input = self.input_menu.menuAction()
        use_as_input.setObjectName("gallery_action_use_as_input")
        tip = self.tr("Start a new picture from the selected item (image-to-image, inpaint…)")
        use_as_input.setToolTip(tip)
        use_as_input.setStatusTip(tip)
        self.actions_by_name["use_as_input"] = use_as_input
        self.toolbar.insertAction(self.actions_by_name["trash"], use_as_input)
        button = self.toolbar.widgetForAction(use_as_input)
        if isinstance(button, QToolButton):
            button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.undo_action = self.undo_stack.createUndoAction(self, self.tr("Undo"))
        self.undo_action.setObjectName("gallery_action_undo")
        self.undo_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Undo))
        self.undo_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.addAction(self.undo_action)

        self.count_label = QLabel(self)
        self.count_label.setObjectName("gallery_count")
        self.status_label = QLabel(self)
        self.status_label.setObjectName("gallery_status")
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.undo_button = QPushButton(self.tr("Undo"), self)
        self.undo_button.setObjectName("gallery_undo")
        self.undo_button.setAccessibleName(self.tr("Undo moving to the trash"))
        self.undo_button.hide()
        status = QHBoxLayout()
        status.addWidget(self.count_label)
        status.addSpacing(12)
        status.addWidget(self.status_label, 1)
        status.addWidget(self.undo_button)

        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.list)
        splitter.addWidget(self.details_area)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.filters)
        layout.addWidget(self.toolbar)
        layout.addWidget(splitter, 1)
        layout.addLayout(status)

    def _connect(self) -> None:
        self.filters.changed.connect(self._on_filters)
        self.model.counted.connect(self._on_counted)
        self.model.page_loaded.connect(self._on_page_loaded)
        self.model.failed.connect(lambda text: self._say(self.tr("Could not read the library: %1")
                                                         .replace("%1", text), error=True))
        self.model.modelAboutToBeReset.connect(self._remember_selection)
        selection = self.list.selectionModel()
        selection.selectionChanged.connect(lambda *_: self._update_actions())
        selection.currentChanged.connect(self._on_current)
        self.list.doubleClicked.connect(lambda _index: self.open_selected())
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.details.favourite_changed.connect(lambda item_id, on: self.set_favourite([item_id], on))
        self.details.tag_added.connect(self.add_tag)
        self.details.tag_removed.connect(self.remove_tag)
        self.details.remove_missing_requested.connect(self.remove_missing)
        self.details.parent_requested.connect(self.show_item)
        self.details.derivatives_requested.connect(self.show_derivatives)
        self.details.credentials.reproduced.connect(self._on_reproduced)
        self.details.credentials.verified.connect(self._on_verified)
        self.undo_button.clicked.connect(self.undo_stack.undo)
        self.undo_stack.canUndoChanged.connect(lambda can: self.undo_button.setVisible(can and self._trash_mode()
                                                                                        is False))
        self.player.error.connect(lambda text: self._say(self.tr("Cannot play the clip: %1").replace("%1", text),
                                                         error=True))
        self._update_actions()

    # -- state -----------------------------------------------------------------------------------------------

    def item_count(self) -> int:
        """How many items the current filters match (0 until the first count arrived)."""
        return self.model.total()

    def _trash_mode(self) -> bool:
        return self.filters.trash.isChecked()

    @Slot()
    def refresh(self) -> None:
        """Run the query again, and reload the choices of generators and models (all off the GUI thread)."""
        self.model.set_query(self.filters.query())
        self.loader.submit(self.gallery.library.facets, self.filters.set_facets,
                           lambda exc: self._say(str(exc), error=True))

    @Slot()
    def _on_filters(self) -> None:
        self._keep_ids.clear()
        self._keep_current = None
        self.undo_button.setVisible(self.undo_stack.canUndo() and not self._trash_mode())
        self.model.set_query(self.filters.query())
        self._update_actions()

    @Slot(int)
    def _on_counted(self, total: int) -> None:
        # Laying out all rows at once takes ~2 ms per 1,000; beyond SINGLE_PASS_ROWS the view lays them out in
        # batches between events instead (the scroll bar then grows as it goes).
        mode = QListView.LayoutMode.SinglePass if total <= SINGLE_PASS_ROWS else QListView.LayoutMode.Batched
        if self.list.layoutMode() != mode:
            self.list.setLayoutMode(mode)
        if total == 0:  # nothing matches (an empty search): no item's details stay on show
            self._keep_ids.clear()
            self._keep_current = None
            self._show_details_of(None)
        if self._scroll_to is not None:  # show_item: load the item's page (it is selected when it arrives)
            row, self._scroll_to = self._scroll_to, None
            if row < total:
                self.model.row_at(row)
                self.list.scrollTo(self.model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)
        if self._trash_mode():
            text = self.tr("%n item(s) in the trash", "", total)
        else:
            text = self.tr("%n item(s)", "", total)
        self.count_label.setText(text)
        self._update_actions()

    @Slot()
    def _remember_selection(self) -> None:
        ids = {row.item.id for row in self.selected_rows()}
        if ids:
            self._keep_ids = ids
        current = self.current_row()
        if current is not None:
            self._keep_current = current.item.id

    @Slot(int, int)
    def _on_page_loaded(self, first: int, last: int) -> None:
        if not self._keep_ids and self._keep_current is None:
            return
        selection = self.list.selectionModel()
        for item_id in list(self._keep_ids):
            row = self.model.row_of(item_id)
            if row is not None and first <= row <= last:
                selection.select(self.model.index(row), QItemSelectionModel.SelectionFlag.Select)
                self._keep_ids.discard(item_id)
        if self._keep_current is not None:
            row = self.model.row_of(self._keep_current)
            if row is not None and first <= row <= last:
                self._keep_current = None
                selection.setCurrentIndex(self.model.index(row), QItemSelectionModel.SelectionFlag.NoUpdate)

    # -- selection -------------------------------------------------------------------------------------------

    def selected_rows(self) -> list[Row]:
        """The selected rows that are loaded, in row order. (Actions apply to these: a selection reaching into
        pages not loaded — select all in a huge library — acts on the loaded part only.)"""
        rows = sorted(index.row() for index in self.list.selectionModel().selectedIndexes())
        loaded = [self.model.peek(row) for row in rows]
        return [row for row in loaded if row is not None]

    def current_row(self) -> Row | None:
        index = self.list.currentIndex()
        return self.model.peek(index.row()) if index.isValid() else None

    def select_rows(self, rows: Sequence[int]) -> None:
        """Select these rows (the first one current)."""
        selection = self.list.selectionModel()
        selection.clearSelection()
        for i, row in enumerate(rows):
            flags = QItemSelectionModel.SelectionFlag.Select
            if i == 0:
                selection.setCurrentIndex(self.model.index(row), flags)
            else:
                selection.select(self.model.index(row), flags)

    def select_item(self, item_id: int) -> bool:
        """Select the loaded item ``item_id``; False when it is not loaded (or not listed)."""
        row = self.model.row_of(item_id)
        if row is None:
            return False
        self.select_rows([row])
        return True

    def clear_selection(self) -> None:
        """Select nothing (and forget what a refresh would select again)."""
        self._keep_ids.clear()
        self._keep_current = None
        self.list.selectionModel().clear()
        self._show_details_of(None)

    def _rows_or_say(self) -> list[Row]:
        rows = self.selected_rows()
        if not rows:
            self._say(self.tr("Select an item first."), error=True)
        return rows

    @Slot(QModelIndex, QModelIndex)
    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row()) if current.isValid() else None
        if row is None and self._keep_current is not None:
            return  # a refresh: the same item is selected again once its page is back
        if row is not None:  # chosen (by the user, or restored): nothing more to restore
            self._keep_current = None
            self._keep_ids.clear()
        self._show_details_of(row.item.id if row is not None else None)

    def _show_details_of(self, item_id: int | None) -> None:
        self._details_for = item_id
        if item_id is None:
            self.details.show_details(None)
            self._update_actions()
            return

        def shown(details: ItemDetails) -> None:
            if self._details_for == item_id:
                self.details.show_details(details)

        def failed(exc: BaseException) -> None:
            if self._details_for == item_id:
                self.details.show_details(None)

        self.loader.submit(lambda: self.gallery.details(item_id), shown, failed)
        self._update_actions()

    def _update_actions(self) -> None:
        rows = self.selected_rows()
        trash = self._trash_mode()
        any_rows, one = bool(rows), len(rows) == 1
        exists = any(row.exists for row in rows)
        enabled = {
            "open": any_rows and exists and not trash,
            "play": any(row.item.kind == "audio" and row.exists for row in rows) and not trash,
            "reveal": one and not trash,
            "copy": any_rows and exists,
            "export": any_rows and exists,
            "favourite": any_rows and not trash,
            "reuse": one and not trash,
            "vary_subtle": one and not trash and bool(rows and self.can_vary(rows[0].item.generator_id)),
            "vary_strong": one and not trash and bool(rows and self.can_vary(rows[0].item.generator_id)),
            "use_as_input": one and not trash and exists and bool(rows and self.input_targets(rows[0].item.kind)),
            "reproduce": one and not trash and exists and self.details.credentials.engine is not None
            and not self.details.credentials.is_reproducing(),
            "trash": any_rows,
            "train": any_rows and not trash and all(row.item.kind in ("image", "text") for row in rows)
            and len({row.item.kind for row in rows}) == 1,
            "restore": any_rows and trash,
            "delete_now": any_rows and trash,
            "empty_trash": trash and self.model.total() > 0,
        }
        can_vary = bool(rows) and self.can_vary(rows[0].item.generator_id)
        visible = {"trash": not trash, "restore": trash, "delete_now": trash, "empty_trash": trash,
                   "vary_subtle": can_vary, "vary_strong": can_vary}
        for name, action in self.actions_by_name.items():
            action.setEnabled(enabled.get(name, True))
            action.setVisible(visible.get(name, True))
        self.actions_by_name["trash"].setText(self.tr("Delete for good") if trash else self.tr("Move to trash"))

    def _context_menu(self, pos: QPoint) -> None:
        index = self.list.indexAt(pos)
        if index.isValid() and not self.list.selectionModel().isSelected(index):
            self.select_rows([index.row()])
        menu = QMenu(self)
        menu.setObjectName("gallery_menu")
        for name in ("open", "play", "reveal", "copy", "export", "export_dataset", None, "favourite", "reuse",
                     "vary_subtle", "vary_strong", "reproduce", "use_as_input", "train", None,
                     "trash",
                     "restore", "delete_now", "empty_trash"):
            if name is None:
                menu.addSeparator()
            elif self.actions_by_name[name].isVisible():
                menu.addAction(self.actions_by_name[name])
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.popup(self.list.viewport().mapToGlobal(pos))

    # -- messages ----------------------------------------------------------------------------------------------

    def _say(self, text: str, *, error: bool = False) -> None:
        first = text.splitlines()[0] if text else ""
        self.status_label.setText(first)
        self.status_label.setToolTip(text)
        mark_error(self.status_label, error)
        self.message.emit(text, error)

    def _failed(self, what: str) -> Callable[[BaseException], None]:
        return lambda exc: self._say(what.replace("%1", str(exc)), error=True)

    # -- actions: files ----------------------------------------------------------------------------------------

    @Slot()
    def open_selected(self) -> bool:
        """Open the selected files in their applications (at most :data:`MAX_OPEN`)."""
        rows = self._rows_or_say()
        opened = False
        for row in rows[:MAX_OPEN]:
            if not row.exists:
                self._say(self.tr("%1 is missing.").replace("%1", str(row.item.path)), error=True)
                continue
            if self.url_opener(QUrl.fromLocalFile(str(row.item.path))):
                opened = True
            else:
                self._say(self.tr("No application opens %1.").replace("%1", row.item.path.name), error=True)
        return opened

    @Slot()
    def play_selected(self) -> bool:
        """Play the first selected audio clip in the app; where playback is unavailable, say in one line what to
        install."""
        audio = [row for row in self.selected_rows() if row.item.kind == "audio" and row.exists]
        if not audio:
            self._say(self.tr("Select an audio clip to play."), error=True)
            return False
        if self.player.play(audio[0].item.path):
            return True
        self._say(self.player.unavailable_reason or self.tr("Playback is unavailable."), error=True)
        return False

    @Slot()
    def reveal_selected(self) -> bool:
        """Show the selected file in the file manager (its folder where the file cannot be pointed at)."""
        rows = self._rows_or_say()
        if not rows:
            return False
        path = rows[0].item.path
        if rows[0].exists and sys.platform == "darwin":
            return QProcess.startDetached("open", ["-R", str(path)])[0]
        if rows[0].exists and sys.platform == "win32":
            return QProcess.startDetached("explorer", [f"/select,{path}"])[0]
        return bool(self.url_opener(QUrl.fromLocalFile(str(path.parent))))

    @Slot()
    def copy_selected(self) -> None:
        """Copy to the clipboard: an image as the image, a text as its text, anything else (or several) as files.

        Reading the file happens on the loader thread; the clipboard is set when it is read.
        """
        rows = [row for row in self._rows_or_say() if row.exists]
        if not rows:
            return
        paths = [row.item.path for row in rows]
        kind = rows[0].item.kind if len(rows) == 1 else None

        def read() -> Any:
            if kind == "image":
                image = QImage(str(paths[0]))
                return image if not image.isNull() else None
            if kind == "text":
                with open(paths[0], "rb") as f:
                    return f.read(MAX_COPY_TEXT).decode("utf-8", errors="replace")
            return None

        def done(content: Any) -> None:
            mime = QMimeData()
            if isinstance(content, str):
                mime.setText(content)
            else:
                mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
                mime.setText("\n".join(str(p) for p in paths))
                if isinstance(content, QImage):
                    mime.setImageData(content)
            QGuiApplication.clipboard().setMimeData(mime)
            self._say(self.tr("Copied to the clipboard."))

        self.loader.submit(read, done, self._failed(self.tr("Could not copy: %1")))

    @Slot()
    def export_dialog(self) -> None:
        """Ask where to save a copy (a file name for one item, a folder for several), without blocking."""
        rows = [row for row in self._rows_or_say() if row.exists]
        if not rows:
            return
        dialog = QFileDialog(self, self.tr("Save a copy"))
        dialog.setObjectName("gallery_export_dialog")
        if len(rows) == 1:
            dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
            dialog.setFileMode(QFileDialog.FileMode.AnyFile)
            dialog.selectFile(rows[0].item.path.name)
            dialog.fileSelected.connect(lambda name: self.export_selected(Path(name), overwrite=True))
        else:
            dialog.setFileMode(QFileDialog.FileMode.Directory)
            dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
            dialog.fileSelected.connect(lambda name: self.export_selected(Path(name)))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialog = dialog
        dialog.open()

    def export_selected(self, dest: Path, *, overwrite: bool = False) -> int:
        """Copy the selected files (and their sidecars) to ``dest``: a file path for one item, a folder for any
        number. Runs on the loader thread; ``exported(paths)`` and a message follow. Returns the loader ticket
        (-1 when nothing is selected)."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        ids = [row.item.id for row in rows]
        gallery = self.gallery

        def work() -> list[Path]:
            return [gallery.export(item_id, dest, overwrite=overwrite) for item_id in ids]

        def done(written: list[Path]) -> None:
            where = str(written[0]) if len(written) == 1 else str(dest)
            self._say(self.tr("Saved %n file(s) to %1.", "", len(written)).replace("%1", where))
            self.exported.emit(written)

        return self.loader.submit(work, done, self._failed(self.tr("Could not save the copy: %1")))

    def export_dataset_dialog(self) -> None:
        """Ask for a new or empty folder to export the selected items into as a dataset, without blocking."""
        if not [row for row in self._rows_or_say() if row.exists]:
            return
        dialog = QFileDialog(self, self.tr("Export as dataset into a new or empty folder"))
        dialog.setObjectName("gallery_dataset_dialog")
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dialog.fileSelected.connect(lambda name: self.export_dataset_selected(Path(name)))
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self._dialog = dialog
        dialog.open()

    def export_dataset_selected(self, folder: Path) -> int:
        """Write the selected items as a dataset into ``folder`` (new or empty; :func:`desktop.batch.dataset.
        export_items`: one kind, its default format) on the loader thread; ``exported([folder])`` and a message
        follow, or the error as a message. Returns the loader ticket (-1 when nothing is selected)."""
        rows = [row for row in self._rows_or_say() if row.exists]
        if not rows:
            return -1
        items = [row.item for row in rows]

        def work() -> list[Path]:
            from desktop.batch.dataset import export_items

            return [export_items(items, folder).out]

        def done(written: list[Path]) -> None:
            self._say(self.tr("Exported %n item(s) as a dataset to %1.", "", len(items)).replace("%1", str(folder)))
            self.exported.emit(written)

        return self.loader.submit(work, done, self._failed(self.tr("Could not export the dataset: %1")))

    # -- actions: the library -----------------------------------------------------------------------------------

    @Slot()
    def toggle_favourite_selected(self) -> None:
        rows = self._rows_or_say()
        if rows:
            self.set_favourite([row.item.id for row in rows],
                               not all(getattr(row.item, "favourite", False) for row in rows))

    def set_favourite(self, item_ids: Sequence[int], favourite: bool) -> int:
        """Mark (or unmark) items as favourites, through the library's writer; the tiles update after."""
        ids, library, gallery = list(item_ids), self.gallery.library, self.gallery

        def work() -> list[Row]:
            for item_id in ids:
                library.set_favourite(item_id, favourite).result()
            return load_rows_by_id(gallery, ids)

        def done(rows: list[Row]) -> None:
            if self.filters.favourites.isChecked():
                if not favourite:
                    self._forget(ids)
                self.refresh()
            else:
                self.model.update_rows(rows)
            self._reload_details(ids)

        return self.loader.submit(work, done, self._failed(self.tr("Could not change the favourite: %1")))

    def add_tag(self, item_id: int, tag: str) -> int:
        library = self.gallery.library
        return self.loader.submit(lambda: library.add_tag(item_id, tag).result(),
                                  lambda _r: self._reload_details([item_id]),
                                  self._failed(self.tr("Could not add the tag: %1")))

    def remove_tag(self, item_id: int, tag: str) -> int:
        library = self.gallery.library
        return self.loader.submit(lambda: library.remove_tag(item_id, tag).result(),
                                  lambda _r: self._reload_details([item_id]),
                                  self._failed(self.tr("Could not remove the tag: %1")))

    def _forget(self, item_ids: Sequence[int]) -> None:
        """These items leave the list: select nothing if they were selected."""
        current = self.current_row()
        if (current is not None and current.item.id in item_ids) or self._details_for in item_ids:
            self.clear_selection()
        else:
            self._keep_ids.difference_update(item_ids)

    def _reload_details(self, item_ids: Sequence[int]) -> None:
        if self._details_for is not None and self._details_for in item_ids:
            self._show_details_of(self._details_for)

    @Slot()
    def delete_key(self) -> None:
        """The Delete key: to the trash, or (in the trash) delete for good after asking."""
        if self._trash_mode():
            self.delete_selected_now(confirm=True)
        else:
            self.trash_selected()

    @Slot()
    def trash_selected(self) -> None:
        """Move the selected items to the trash (undo with Ctrl+Z or the Undo button)."""
        rows = self._rows_or_say()
        if rows:
            ids = [row.item.id for row in rows]
            text = self.tr("Move %n item(s) to the trash", "", len(ids))
            self.undo_stack.push(_TrashCommand(self, ids, text))

    def _write_trash(self, item_ids: list[int], *, trash: bool) -> int:
        gallery = self.gallery
        work = (lambda: gallery.trash(item_ids)) if trash else (lambda: gallery.restore(item_ids))

        def done(_result: object) -> None:
            n = len(item_ids)
            if trash:
                self._say(self.tr("Moved %n item(s) to the trash.", "", n))
            else:
                self._say(self.tr("Restored %n item(s) from the trash.", "", n))
            self.undo_button.setVisible(self.undo_stack.canUndo() and not self._trash_mode())
            self._forget(item_ids)
            self.refresh()

        return self.loader.submit(work, done, self._failed(self.tr("Could not change the trash: %1")))

    @Slot()
    def undo(self) -> None:
        self.undo_stack.undo()

    @Slot()
    def restore_selected(self) -> int:
        """(In the trash) take the selected items out of it."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        return self._write_trash([row.item.id for row in rows], trash=False)

    def empty_trash(self, confirm: bool = True) -> int:
        """Delete every item in the trash and its file. With ``confirm``, asks first (a non-blocking message
        box); returns the loader ticket, or -1 while asking."""
        if confirm:
            self._ask(self.tr("Empty the trash?"),
                      self.tr("Every item in the trash and its file will be deleted. This cannot be undone."),
                      lambda: self.empty_trash(confirm=False))
            return -1
        gallery = self.gallery

        def done(count: int) -> None:
            self.undo_stack.clear()
            self._say(self.tr("Deleted %n item(s) for good.", "", count))
            if self._trash_mode():
                self.clear_selection()
            self.refresh()

        return self.loader.submit(gallery.empty_trash, done, self._failed(self.tr("Could not empty the trash: %1")))

    def delete_selected_now(self, confirm: bool = True) -> int:
        """Delete the selected items and their files now, skipping the trash (asks first with ``confirm``)."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        ids = [row.item.id for row in rows]
        if confirm:
            self._ask(self.tr("Delete for good?"),
                      self.tr("%n item(s) and their files will be deleted. This cannot be undone.", "", len(ids)),
                      lambda: self._delete_now(ids))
            return -1
        return self._delete_now(ids)

    def _delete_now(self, ids: list[int]) -> int:
        gallery = self.gallery

        def done(count: int) -> None:
            self._say(self.tr("Deleted %n item(s) for good.", "", count))
            self._forget(ids)
            self.refresh()

        return self.loader.submit(lambda: gallery.delete_now(ids), done,
                                  self._failed(self.tr("Could not delete: %1")))

    def _ask(self, title: str, text: str, then: Callable[[], object]) -> None:
        box = QMessageBox(QMessageBox.Icon.Warning, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setObjectName("gallery_confirm")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

        def finished(_result: int) -> None:
            if box.clickedButton() is box.button(QMessageBox.StandardButton.Yes):
                then()
            self._confirm = None

        box.finished.connect(finished)
        self._confirm = box
        box.open()

    def remove_missing(self, item_id: int) -> int:
        """Forget an item whose file is gone."""
        gallery = self.gallery

        def done(_result: object) -> None:
            self._say(self.tr("Removed the missing item from the library."))
            self._forget([item_id])
            self.refresh()

        return self.loader.submit(lambda: gallery.remove_missing(item_id), done,
                                  self._failed(self.tr("Could not remove the item: %1")))

    @Slot()
    def reuse_selected(self) -> int:
        """Ask the window to open the selected item's generator filled with its parameters."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        gallery, item_id = self.gallery, rows[0].item.id
        return self.loader.submit(lambda: gallery.reuse(item_id),
                                  lambda recipe: self.reuse_requested.emit(recipe.generator_id, recipe),
                                  self._failed(self.tr("Cannot reuse the parameters: %1")))

    @Slot()
    def train_selected(self) -> bool:
        """Ask the window for a Training window that learns from the selected items' files (those on disk)."""
        from desktop.ui.training.gallery import TrainRequest

        rows = [row for row in self._rows_or_say() if row.exists]
        if not rows:
            return False
        ids = [row.item.generator_id for row in rows]
        self.train_requested.emit(TrainRequest(rows[0].item.kind, [row.item.path for row in rows],
                                               sorted(set(ids), key=lambda g: -ids.count(g))))
        return True

    # -- the chain of refinements ------------------------------------------------------------------------------

    @Slot()
    def _fill_input_menu(self) -> None:
        """The "Use as input" choices for the selected item (one per generator mode that takes its kind)."""
        self.input_menu.clear()
        rows = self.selected_rows()
        targets = self.input_targets(rows[0].item.kind) if len(rows) == 1 else []
        several = len({target.generator_id for target in targets}) > 1
        for target in targets:
            text = f"{target.generator_name}: {target.label}" if several else target.label
            action = self.input_menu.addAction(text)
            action.setObjectName(f"gallery_use_as_input_{target.generator_id}_{target.mode}")
            action.triggered.connect(lambda _checked=False, t=target: self.use_as_input(t.generator_id, t.mode))
        if not targets:
            self.input_menu.addAction(self.tr("No generator takes this kind of item")).setEnabled(False)

    def use_as_input(self, generator_id: str, mode: str) -> int:
        """Ask the window to open ``generator_id``'s page starting from the selected item's file in ``mode``,
        keeping what made the item where it fits (read off the GUI thread); returns the loader ticket (-1 when
        there is no single item on disk selected)."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        row = rows[0]
        if not row.exists:
            self._say(self.tr("%1 is missing.").replace("%1", str(row.item.path)), error=True)
            return -1
        gallery, item = self.gallery, row.item
        return self.loader.submit(
            lambda: gallery.reuse(item.id),
            lambda recipe: self.use_as_input_requested.emit(InputRequest(generator_id, mode, item.path, item.id,
                                                                         recipe)),
            self._failed(self.tr("Cannot use the item as input: %1")))

    @Slot(int)
    def show_item(self, item_id: int) -> int:
        """Select item ``item_id`` and show its details wherever it is (the "Derived from" link): when the filters
        hide it they are cleared (the trash shown if it is there, which is said); a deleted item is said to be
        gone. Returns the loader ticket (-1 when the item was already listed)."""
        if self.select_item(item_id):
            self.list.scrollTo(self.list.currentIndex())
            return -1
        library = self.gallery.library

        def work() -> tuple[Any, int | None]:
            from desktop.library.db import Query

            item = library.get(item_id)
            if item is None:
                return None, None
            return item, library.position(Query(trashed=item.trashed_at is not None), item_id)

        def done(found: tuple[Any, int | None]) -> None:
            item, position = found
            if item is None:
                self._say(self.tr("Item %1 is no longer in the library: it was deleted.").replace("%1", str(item_id)),
                          error=True)
                return
            trashed = item.trashed_at is not None
            self.clear_selection()
            self.filters.clear(trash=trashed)  # the query is asked for again: the item's page is loaded after it
            self._keep_ids, self._keep_current, self._scroll_to = {item_id}, item_id, position
            if trashed:
                self._say(self.tr("Item %1 is in the trash.").replace("%1", str(item_id)))

        return self.loader.submit(work, done, self._failed(self.tr("Cannot show the item: %1")))

    @Slot(int)
    def show_derivatives(self, item_id: int) -> None:
        """List only the items derived from ``item_id`` (every other filter cleared; the chip clears this one)."""
        self.clear_selection()
        self.filters.clear(derived_from=item_id)
        self._say(self.tr("Showing the items derived from item %1.").replace("%1", str(item_id)))

    def vary_selected(self, strength: float) -> int:
        """Ask the window to make a variation of the selected item at ``strength`` (its recipe, with the item's
        own seed: a batch image's)."""
        rows = self._rows_or_say()
        if not rows:
            return -1
        gallery, item = self.gallery, rows[0].item

        def recipe() -> Any:
            found = gallery.reuse(item.id)
            output = item.metadata.get("output") if isinstance(item.metadata, dict) else None
            own = output.get("seed") if isinstance(output, dict) else None
            if isinstance(own, int) and not isinstance(own, bool) and own >= 0:
                found = dataclasses.replace(found, seed=own)
            return found

        return self.loader.submit(recipe, lambda found: self.vary_requested.emit(found.generator_id, found, strength),
                                  self._failed(self.tr("Cannot vary the item: %1")))

    def set_engine(self, engine: Any) -> None:
        """Reproduce items through ``engine`` (the window's)."""
        self.details.credentials.set_engine(engine, self.gallery.library)
        self._update_actions()

    def reproduce_selected(self) -> bool:
        """Re-run the selected item's job and compare (the outcome shows in the details pane's Content Credentials
        section); False when it cannot start."""
        rows = self._rows_or_say()
        if not rows:
            return False
        started = self.details.credentials.reproduce(rows[0].item.id)
        self._update_actions()
        return started

    @Slot(int, str)
    def _on_verified(self, item_id: int, state: str) -> None:
        """Mark the item's tile with what its Content Credentials say (only items looked at are checked)."""
        if self.delegate.credentials.get(item_id) != state:
            self.delegate.credentials[item_id] = state
            row = self.model.row_of(item_id)
            if row is not None:
                self.list.update(self.model.index(row))

    @Slot(int, str, object, bool)
    def _on_reproduced(self, _item_id: int, text: str, _identical: object, failed: bool) -> None:
        self._update_actions()
        self._say(text, error=failed)

    # -- life -------------------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop playing, drop queued work and wait for the work under way (the window calls it when closing;
        the view must not be destroyed with work running on its pools)."""
        self.player.stop()
        self.filters.search_timer.stop()
        self.details.credentials.shutdown()
        self.loader.shutdown()
        self.thumbnails.shutdown()
