"""``DetailsPane``: everything about the selected gallery item — a larger thumbnail, the prompt, the full metadata
as a read-only tree, its tags (add, remove), the favourite toggle, its file (with whether it still exists;
for a missing file, a "Remove from library" button), and its place in the chain of refinements: "Derived from"
its parent (a link that shows it; or that the parent is in the trash, or was deleted) and "Derivatives: N" (a
link that lists them).

The pane only shows an :class:`~desktop.library.gallery.ItemDetails` it is given and asks for changes through
signals; the gallery view does the writes (off the GUI thread) and gives the pane the new details.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QCoreApplication, Qt, Signal, Slot
from PySide6.QtGui import QPixmap, QTextDocumentFragment
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.engine.memory import human_bytes
from desktop.ui.gallery.credentials import CredentialsPanel
from desktop.ui.gallery.model import date_text
from desktop.ui.gallery.thumbnails import Thumbnail, ThumbnailService
from desktop.ui.theme import mark_error

if TYPE_CHECKING:
    from desktop.library.gallery import ItemDetails

__all__ = ["DetailsPane", "PREVIEW_SIZE"]

PREVIEW_SIZE = 320
MAX_CHILDREN = 200
MAX_VALUE_CHARS = 300
MAX_DEPTH = 12


class DetailsPane(QWidget):
    """Signals (the item id first): ``favourite_changed(id, favourite)``, ``tag_added(id, tag)``,
    ``tag_removed(id, tag)``, ``remove_missing_requested(id)``; ``parent_requested(parent_id)`` (the "Derived
    from" link) and ``derivatives_requested(id)`` (the "Derivatives" link)."""

    favourite_changed = Signal(int, bool)
    tag_added = Signal(int, str)
    tag_removed = Signal(int, str)
    remove_missing_requested = Signal(int)
    parent_requested = Signal(int)
    derivatives_requested = Signal(int)

    def __init__(self, thumbnails: ThumbnailService, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_details")
        self.thumbnails = thumbnails
        self.details: ItemDetails | None = None
        self._preview_wanted: tuple[Path, str] | None = None  # the preview asked for and not shown yet
        self._build()
        thumbnails.ready.connect(self._on_thumbnail)
        self.show_details(None)

    def _build(self) -> None:
        self.preview = QLabel(self)
        self.preview.setObjectName("detail_preview")
        self.preview.setAccessibleName(self.tr("Preview"))
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(120)

        self.title = QLabel(self)
        self.title.setObjectName("detail_title")
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.PlainText)

        self.favourite = QCheckBox(self.tr("Favourite"), self)
        self.favourite.setObjectName("detail_favourite")
        self.favourite.setAccessibleName(self.tr("Favourite"))
        self.favourite.toggled.connect(self._on_favourite)

        self.prompt = QPlainTextEdit(self)
        self.prompt.setObjectName("detail_prompt")
        self.prompt.setAccessibleName(self.tr("Prompt"))
        self.prompt.setReadOnly(True)
        self.prompt.setMaximumHeight(90)

        self.metadata = QTreeWidget(self)
        self.metadata.setObjectName("detail_metadata")
        self.metadata.setAccessibleName(self.tr("Metadata"))
        self.metadata.setColumnCount(2)
        self.metadata.setHeaderLabels([self.tr("Key"), self.tr("Value")])
        self.metadata.setUniformRowHeights(True)

        self.tags = QListWidget(self)
        self.tags.setObjectName("detail_tags")
        self.tags.setAccessibleName(self.tr("Tags"))
        self.tags.setFlow(QListWidget.Flow.LeftToRight)
        self.tags.setWrapping(True)
        self.tags.setMaximumHeight(64)
        self.tag_edit = QLineEdit(self)
        self.tag_edit.setObjectName("detail_tag_edit")
        self.tag_edit.setAccessibleName(self.tr("New tag"))
        self.tag_edit.setPlaceholderText(self.tr("Add a tag…"))
        self.tag_edit.returnPressed.connect(self.add_tag)
        self.add_tag_button = QPushButton(self.tr("Add"), self)
        self.add_tag_button.setObjectName("detail_add_tag")
        self.add_tag_button.setAccessibleName(self.tr("Add the tag"))
        self.add_tag_button.clicked.connect(self.add_tag)
        self.remove_tag_button = QPushButton(self.tr("Remove"), self)
        self.remove_tag_button.setObjectName("detail_remove_tag")
        self.remove_tag_button.setAccessibleName(self.tr("Remove the selected tag"))
        self.remove_tag_button.clicked.connect(self.remove_selected_tag)
        tag_row = QHBoxLayout()
        tag_row.addWidget(self.tag_edit, 1)
        tag_row.addWidget(self.add_tag_button)
        tag_row.addWidget(self.remove_tag_button)

        self.path_label = QLabel(self)
        self.path_label.setObjectName("detail_path")
        self.path_label.setWordWrap(True)
        self.path_label.setTextFormat(Qt.TextFormat.PlainText)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_state = QLabel(self)
        self.file_state.setObjectName("detail_file_state")
        self.file_state.setWordWrap(True)
        self.remove_missing_button = QPushButton(self.tr("Remove from library"), self)
        self.remove_missing_button.setObjectName("detail_remove_missing")
        self.remove_missing_button.setAccessibleName(self.tr("Remove this item, whose file is gone, from the library"))
        self.remove_missing_button.clicked.connect(self._on_remove_missing)

        self.derived_from = QLabel(self)
        self.derived_from.setObjectName("detail_derived_from")
        self.derived_from.setAccessibleName(self.tr("Derived from"))
        self.derived_from.setWordWrap(True)
        self.derived_from.setTextFormat(Qt.TextFormat.RichText)
        self.derived_from.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                  | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.derived_from.linkActivated.connect(self._on_parent_link)
        self.derivatives = QLabel(self)
        self.derivatives.setObjectName("detail_derivatives")
        self.derivatives.setAccessibleName(self.tr("Derivatives"))
        self.derivatives.setTextFormat(Qt.TextFormat.RichText)
        self.derivatives.setTextInteractionFlags(Qt.TextInteractionFlag.LinksAccessibleByMouse
                                                 | Qt.TextInteractionFlag.LinksAccessibleByKeyboard)
        self.derivatives.linkActivated.connect(self._on_derivatives_link)

        form = QFormLayout()
        form.addRow(self.tr("File:"), self.path_label)
        form.addRow("", self.file_state)
        form.addRow(self.tr("Derived from:"), self.derived_from)
        form.addRow(self.tr("Derivatives:"), self.derivatives)
        form.addRow(self.tr("Tags:"), self.tags)
        self._form = form

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.preview)
        layout.addWidget(self.title)
        layout.addWidget(self.favourite)
        layout.addWidget(self.prompt)
        layout.addLayout(form)
        layout.addLayout(tag_row)
        layout.addWidget(self.remove_missing_button)
        self.credentials = CredentialsPanel(self)  # Content Credentials and "Reproduce" (its own module)
        layout.addWidget(self.credentials)
        layout.addWidget(self.metadata, 1)

    # -- showing -------------------------------------------------------------------------------------------------

    def item_id(self) -> int | None:
        return self.details.item.id if self.details is not None else None

    def show_details(self, details: ItemDetails | None) -> None:
        """Show ``details`` (None: nothing selected)."""
        self.details = details
        has = details is not None
        for widget in (self.favourite, self.tag_edit, self.add_tag_button, self.remove_tag_button, self.tags):
            widget.setEnabled(has)
        self.favourite.blockSignals(True)
        self.favourite.setChecked(bool(has and getattr(details.item, "favourite", False)))
        self.favourite.blockSignals(False)
        self.tags.clear()
        self.metadata.clear()
        self._preview_wanted = None
        self.credentials.show_item(details.item if details is not None else None,
                                   bool(details is not None and details.exists))
        if details is None:
            self.preview.clear()
            self.preview.setText(self.tr("Select an item to see its details."))
            self.title.clear()
            self.prompt.clear()
            self.path_label.clear()
            self.file_state.clear()
            self.remove_missing_button.hide()
            self._show_chain(None)
            return
        item = details.item
        self.title.setText(self.tr("%1 · %2 · %3").replace("%1", item.kind).replace("%2", item.generator_id)
                           .replace("%3", date_text(item.created)))
        self.prompt.setPlainText(item.prompt or "")
        for tag in details.tags:
            entry = QListWidgetItem(tag, self.tags)
            entry.setData(Qt.ItemDataRole.UserRole, tag)
        self.path_label.setText(str(item.path))
        if details.exists:
            size = self.tr(" (%1)").replace("%1", human_bytes(details.size_bytes)) if details.size_bytes else ""
            self.file_state.setText(self.tr("On disk%1").replace("%1", size))
            mark_error(self.file_state, False)
        else:
            self.file_state.setText(self.tr("⚠ The file is missing: it was moved or deleted outside Studiolo."))
            mark_error(self.file_state)
        self.remove_missing_button.setVisible(not details.exists)
        self._show_chain(details)
        self._fill_metadata(item)
        self._show_preview(item.path, item.kind, details.exists)

    def _show_chain(self, details: ItemDetails | None) -> None:
        """The "Derived from" and "Derivatives" rows (hidden when there is nothing to say)."""
        parent = getattr(details, "parent", None)
        self.derived_from.setToolTip("")
        if parent is None:
            self.derived_from.clear()
        elif parent.item is None:
            mark_error(self.derived_from, True)
            what = self.tr("item %1").replace("%1", str(parent.item_id)) if parent.item_id else self.tr("an item")
            gone = self.tr("%1, which was deleted from the library").replace("%1", what)
            self.derived_from.setText(html.escape(gone))
        else:
            mark_error(self.derived_from, False)
            link = f'<a href="item:{parent.item.id}">{html.escape(_item_label(parent.item))}</a>'
            note = html.escape(self.tr(" (in the trash)")) if parent.trashed else ""
            self.derived_from.setText(link + note)
            self.derived_from.setToolTip(str(parent.item.path))
        self._form.setRowVisible(self.derived_from, parent is not None)
        count = getattr(details, "derivatives", 0) if details is not None else 0
        if count:
            text = html.escape(self.tr("%n item(s)", "", count))
            self.derivatives.setText(f'<a href="derivatives:{details.item.id}">{text}</a>')
        else:
            self.derivatives.clear()
        self._form.setRowVisible(self.derivatives, bool(count))

    def parent_text(self) -> str:
        """What the "Derived from" row says, as plain text ("" when hidden)."""
        return QTextDocumentFragment.fromHtml(self.derived_from.text()).toPlainText()

    def activate_parent_link(self) -> bool:
        """Follow the "Derived from" link, as a click on it does; False when there is none."""
        parent = getattr(self.details, "parent", None)
        if parent is None or parent.item is None:
            return False
        self._on_parent_link(f"item:{parent.item.id}")
        return True

    def activate_derivatives_link(self) -> bool:
        """Follow the "Derivatives" link, as a click on it does; False when there is none."""
        if self.details is None or not getattr(self.details, "derivatives", 0):
            return False
        self._on_derivatives_link(f"derivatives:{self.details.item.id}")
        return True

    @Slot(str)
    def _on_parent_link(self, link: str) -> None:
        if link.startswith("item:"):
            self.parent_requested.emit(int(link.removeprefix("item:")))

    @Slot(str)
    def _on_derivatives_link(self, link: str) -> None:
        if link.startswith("derivatives:"):
            self.derivatives_requested.emit(int(link.removeprefix("derivatives:")))

    def _fill_metadata(self, item: Any) -> None:
        summary = {
            "id": item.id, "generator": item.generator_id, "generator version": item.generator_version,
            "kind": item.kind, "model": item.model, "seed": item.seed, "created": date_text(item.created),
            "job": item.job_id, "partial": item.partial,
        }
        top = QTreeWidgetItem(self.metadata, [self.tr("item"), ""])
        _add_children(top, summary)
        top.setExpanded(True)
        meta = QTreeWidgetItem(self.metadata, [self.tr("metadata"), ""])
        _add_children(meta, item.metadata)
        meta.setExpanded(True)
        self.metadata.resizeColumnToContents(0)

    def _show_preview(self, path: Path, kind: str, exists: bool) -> None:
        thumbnail = self.thumbnails.request(path, kind, PREVIEW_SIZE) if exists else None
        if thumbnail is not None:
            self._set_preview(thumbnail)
        elif exists:
            self.preview.setText(self.tr("Loading the preview…"))
            self._preview_wanted = (path, kind)
        else:
            self.preview.setText(self.tr("⚠ No preview: the file is missing."))

    @Slot(str, int)
    def _on_thumbnail(self, _path: str, _size: int) -> None:
        """A tile is ready: show the preview if it is ours. Asked for again on any other tile: the service drops
        requests buried under a newer batch (scrolling right after selecting), and then draws those newer tiles."""
        wanted = self._preview_wanted
        if wanted is None:
            return
        thumbnail = self.thumbnails.request(wanted[0], wanted[1], PREVIEW_SIZE)  # no second drawing while pending
        if thumbnail is not None:
            self._preview_wanted = None
            self._set_preview(thumbnail)

    def _set_preview(self, thumbnail: Thumbnail) -> None:
        if thumbnail.image.isNull():
            self.preview.setText(self.tr("No preview."))
        else:
            self.preview.setPixmap(QPixmap.fromImage(thumbnail.image))

    def preview_pixmap(self) -> QPixmap:
        pixmap = self.preview.pixmap()
        return pixmap if pixmap is not None else QPixmap()

    def tag_names(self) -> list[str]:
        return [self.tags.item(i).text() for i in range(self.tags.count())]

    # -- asking for changes -----------------------------------------------------------------------------------

    @Slot()
    def add_tag(self) -> None:
        tag = self.tag_edit.text().strip()
        if self.details is None or not tag:
            return
        self.tag_edit.clear()
        if tag not in self.details.tags:
            self.tag_added.emit(self.details.item.id, tag)

    @Slot()
    def remove_selected_tag(self) -> None:
        entry = self.tags.currentItem()
        if self.details is not None and entry is not None:
            self.tag_removed.emit(self.details.item.id, entry.text())

    @Slot(bool)
    def _on_favourite(self, checked: bool) -> None:
        if self.details is not None:
            self.favourite_changed.emit(self.details.item.id, checked)

    @Slot()
    def _on_remove_missing(self) -> None:
        if self.details is not None:
            self.remove_missing_requested.emit(self.details.item.id)


def _add_children(parent: QTreeWidgetItem, value: Any, depth: int = 0) -> None:
    """Add ``value``'s entries under ``parent`` (dicts and lists as branches; long values shortened)."""
    if depth > MAX_DEPTH:
        QTreeWidgetItem(parent, ["…", _text(value)])
        return
    if isinstance(value, dict):
        entries = list(value.items())
    elif isinstance(value, (list, tuple)):
        entries = [(f"[{i}]", v) for i, v in enumerate(value)]
    else:
        return
    for key, child in entries[:MAX_CHILDREN]:
        node = QTreeWidgetItem(parent, [str(key), "" if isinstance(child, (dict, list, tuple)) else _text(child)])
        if isinstance(child, (dict, list, tuple)):
            node.setText(1, f"({len(child)})")
            _add_children(node, child, depth + 1)
        else:
            full = child if isinstance(child, str) else json.dumps(child, ensure_ascii=False, default=str)
            if len(full) > MAX_VALUE_CHARS or "\n" in full:
                node.setToolTip(1, full[:5000])
    if len(entries) > MAX_CHILDREN:
        more = QCoreApplication.translate("DetailsPane", "%1 more").replace("%1", str(len(entries) - MAX_CHILDREN))
        QTreeWidgetItem(parent, ["…", more])


def _item_label(item: Any) -> str:
    """``#12 · a red square`` (the prompt shortened), or ``#12 · picture.png`` without a prompt."""
    prompt = " ".join((item.prompt or "").split())
    name = prompt if len(prompt) <= 60 else prompt[:59] + "…"
    return f"#{item.id} · {name or item.path.name}"


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text.replace("\n", " ⏎ ")
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"
