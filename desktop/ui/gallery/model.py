"""``GalleryModel``: the library's items for one query, as a lazy list model.

The model knows the query's total count (so the scroll bar is right from the start) but holds only pages of
:attr:`GalleryModel.page_size` items, fetched through a :class:`~desktop.ui.tasks.TaskGroup` when a view first asks
for one of their rows (``data()``), and forgotten again beyond :attr:`GalleryModel.max_pages`. A row not loaded yet
answers None and is drawn as a placeholder until its page arrives (``dataChanged`` for that page).

Thumbnails are asked for only from ``data()`` — which views call for the rows they paint — and only once per
file; when one is ready, ``dataChanged`` is emitted for the rows of that file only. Whether each file still
exists is checked on the loader thread together with its page. Every refresh gets a new generation: answers to
an older query are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QAbstractListModel,
    QCoreApplication,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QUrl,
    Signal,
)

from desktop.ui.gallery.thumbnails import THUMB_SIZE, Thumbnail, ThumbnailService
from desktop.ui.tasks import TaskGroup

if TYPE_CHECKING:
    from desktop.library.db import Item, Query
    from desktop.library.gallery import Gallery

__all__ = [
    "GalleryModel",
    "Row",
    "ITEM_ROLE",
    "ITEM_ID_ROLE",
    "EXISTS_ROLE",
    "THUMBNAIL_ROLE",
    "LOADED_ROLE",
]

ITEM_ROLE = Qt.ItemDataRole.UserRole + 1        # the Item, or None while its page loads
ITEM_ID_ROLE = Qt.ItemDataRole.UserRole + 2     # its id, or None
EXISTS_ROLE = Qt.ItemDataRole.UserRole + 3      # whether its file was on disk when the page loaded
THUMBNAIL_ROLE = Qt.ItemDataRole.UserRole + 4   # its Thumbnail, or None (asks for it)
LOADED_ROLE = Qt.ItemDataRole.UserRole + 5      # whether the row's page is loaded

AnyIndex = QModelIndex | QPersistentModelIndex


@dataclass(frozen=True)
class Row:
    """One loaded row: the item and whether its file existed when it was loaded."""

    item: Item
    exists: bool


def load_rows(gallery: Gallery, query: Query, offset: int, limit: int) -> list[Row]:
    """(Loader thread) one page of items, each with whether its file exists."""
    return [Row(item, _exists(item.path)) for item in gallery.items(query, limit=limit, offset=offset)]


def load_rows_by_id(gallery: Gallery, item_ids: Iterable[int]) -> list[Row]:
    """(Loader thread) the current state of these items (those still in the library)."""
    rows = []
    for item_id in item_ids:
        item = gallery.library.get(item_id)
        if item is not None:
            rows.append(Row(item, _exists(item.path)))
    return rows


def _exists(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


class GalleryModel(QAbstractListModel):
    """Items of :attr:`query`, newest first, loaded a page at a time.

    Signals: ``counted(total)`` after each (re)count; ``page_loaded(first_row, last_row)``; ``failed(message)``
    when the library could not be read.
    """

    counted = Signal(int)
    page_loaded = Signal(int, int)
    failed = Signal(str)

    def __init__(self, gallery: Gallery, loader: TaskGroup, thumbnails: ThumbnailService, *,
                 page_size: int = 200, max_pages: int = 30, thumb_size: int = THUMB_SIZE,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.gallery = gallery
        self.loader = loader
        self.thumbnails = thumbnails
        self.page_size = max(1, page_size)
        self.max_pages = max(2, max_pages)
        self.thumb_size = thumb_size
        from desktop.library.db import Query

        self._query: Query = Query()
        self._generation = 0
        self._count = 0
        self._pages: dict[int, list[Row]] = {}
        self._requested: set[int] = set()
        self._row_of_id: dict[int, int] = {}
        self._rows_of_path: dict[str, set[int]] = {}
        self.pages_requested = 0  # pages asked of the loader since the model was made (lazy-loading checks)
        thumbnails.ready.connect(self._on_thumbnail)

    # -- the query -----------------------------------------------------------------------------------------------

    @property
    def query(self) -> Query:
        return self._query

    def set_query(self, query: Query) -> None:
        """Show ``query``'s items (counted and loaded off the GUI thread)."""
        self._query = query
        self.refresh()

    def refresh(self) -> None:
        """Count again and reload (the rows already shown stay until the new count arrives)."""
        self._generation += 1
        generation, query, size = self._generation, self._query, self.page_size
        gallery = self.gallery

        def work() -> tuple[int, list[Row]]:
            return gallery.count(query), load_rows(gallery, query, 0, size)

        self.loader.submit(work, lambda result: self._on_counted(generation, *result), self._on_error)

    def total(self) -> int:
        """The query's item count (0 until the first count arrived)."""
        return self._count

    def _on_counted(self, generation: int, count: int, first: list[Row]) -> None:
        if generation != self._generation:
            return
        self.beginResetModel()
        self._count = count
        self._pages.clear()
        self._requested.clear()
        self._row_of_id.clear()
        self._rows_of_path.clear()
        self._store_page(0, first[:count])  # an item added between the count and the page: not a row past the end
        self._requested.add(0)
        self.endResetModel()
        self.counted.emit(count)
        if first and count:
            self.page_loaded.emit(0, min(len(first), count) - 1)

    def _on_error(self, error: BaseException) -> None:
        self.failed.emit(str(error))

    # -- pages ---------------------------------------------------------------------------------------------------

    def loaded_pages(self) -> list[int]:
        return sorted(self._pages)

    def _ensure_page(self, page: int) -> None:
        if page in self._pages or page in self._requested:
            return
        self._requested.add(page)
        self.pages_requested += 1
        generation, query, size, gallery = self._generation, self._query, self.page_size, self.gallery
        self.loader.submit(lambda: load_rows(gallery, query, page * size, size),
                           lambda rows: self._on_page(generation, page, rows), self._on_error)

    def _on_page(self, generation: int, page: int, rows: list[Row]) -> None:
        if generation != self._generation:
            return
        first = page * self.page_size
        if not rows or first >= self._count:
            return
        rows = rows[: self._count - first]  # the count is what the view was told: never more rows than that
        self._store_page(page, rows)
        self._evict(page)
        last = first + len(rows) - 1
        self.dataChanged.emit(self.index(first), self.index(last))
        self.page_loaded.emit(first, last)

    def _store_page(self, page: int, rows: list[Row]) -> None:
        self._pages[page] = rows
        first = page * self.page_size
        for offset, row in enumerate(rows):
            self._row_of_id[row.item.id] = first + offset
            self._rows_of_path.setdefault(str(row.item.path), set()).add(first + offset)

    def _evict(self, keep: int) -> None:
        """Forget the pages farthest from ``keep`` beyond :attr:`max_pages` (asked again when shown again)."""
        while len(self._pages) > self.max_pages:
            page = max(self._pages, key=lambda p: abs(p - keep))
            first = page * self.page_size
            for offset, row in enumerate(self._pages.pop(page)):
                self._row_of_id.pop(row.item.id, None)
                rows = self._rows_of_path.get(str(row.item.path))
                if rows is not None:
                    rows.discard(first + offset)
                    if not rows:
                        del self._rows_of_path[str(row.item.path)]
            self._requested.discard(page)

    # -- rows ----------------------------------------------------------------------------------------------------

    def row_at(self, row: int) -> Row | None:
        """The loaded row, or None (not loaded yet: its page is asked for)."""
        if not 0 <= row < self._count:
            return None
        page, offset = divmod(row, self.page_size)
        rows = self._pages.get(page)
        if rows is None:
            self._ensure_page(page)
            return None
        return rows[offset] if offset < len(rows) else None

    def peek(self, row: int) -> Row | None:
        """The row if its page is loaded, else None (nothing is asked for: e.g. a selection of every row)."""
        page, offset = divmod(row, self.page_size)
        rows = self._pages.get(page)
        return rows[offset] if rows is not None and 0 <= offset < len(rows) and row < self._count else None

    def row_of(self, item_id: int) -> int | None:
        """The row of a loaded item, or None."""
        return self._row_of_id.get(item_id)

    def update_rows(self, rows: Sequence[Row]) -> None:
        """Replace loaded rows with a newer state of the same items (e.g. after favouriting)."""
        for new in rows:
            row = self._row_of_id.get(new.item.id)
            if row is None:
                continue
            page, offset = divmod(row, self.page_size)
            loaded = self._pages.get(page)
            if loaded is None or offset >= len(loaded):
                continue
            loaded[offset] = new
            index = self.index(row)
            self.dataChanged.emit(index, index)

    # -- Qt --------------------------------------------------------------------------------------------------------

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: N802, B008 (Qt)
        return 0 if parent.isValid() else self._count

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        loaded = self.row_at(index.row())
        if role == LOADED_ROLE:
            return loaded is not None
        if loaded is None:
            return None
        item = loaded.item
        if role == Qt.ItemDataRole.DisplayRole:
            return title_of(item)
        if role == ITEM_ROLE:
            return item
        if role == ITEM_ID_ROLE:
            return item.id
        if role == EXISTS_ROLE:
            return loaded.exists
        if role in (THUMBNAIL_ROLE, Qt.ItemDataRole.DecorationRole):
            thumbnail = self.thumbnail(loaded)
            if role == THUMBNAIL_ROLE:
                return thumbnail
            return thumbnail.image if thumbnail is not None else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip_of(item, loaded.exists)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{item.kind}: {title_of(item)}"
        return None

    def thumbnail(self, loaded: Row) -> Thumbnail | None:
        """The row's tile if ready; else it is asked for (once) and None is returned."""
        item = loaded.item
        if not loaded.exists:
            return self.thumbnails.get(item.path, self.thumb_size)
        return self.thumbnails.request(item.path, item.kind, self.thumb_size)

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsDragEnabled

    def mimeTypes(self) -> list[str]:  # noqa: N802 (Qt)
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:  # noqa: N802 (Qt)
        """The selected files as file URLs (drag out to other apps); rows not loaded are left out."""
        mime = QMimeData()
        paths: list[Path] = []
        for index in indexes:
            loaded = self.row_at(index.row()) if index.isValid() else None
            if loaded is not None and loaded.item.path not in paths:
                paths.append(loaded.item.path)
        mime.setUrls([QUrl.fromLocalFile(str(path)) for path in paths])
        mime.setText("\n".join(str(path) for path in paths))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802 (Qt)
        return Qt.DropAction.CopyAction

    def _on_thumbnail(self, path: str, size: int) -> None:
        if size != self.thumb_size:
            return
        for row in sorted(self._rows_of_path.get(path, ())):
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole, THUMBNAIL_ROLE])


def title_of(item: Item) -> str:
    """One line naming the item: its prompt's first line, else its text's, else its file name."""
    for text in (item.prompt, getattr(item, "text", None)):
        if text and text.strip():
            line = text.strip().splitlines()[0]
            return line if len(line) <= 80 else line[:79] + "…"
    return item.path.name


def date_text(created: float) -> str:
    """The item's date as the gallery shows it: ``2025-03-04 17:05``."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
    except (OverflowError, OSError, ValueError):
        return "?"


def tooltip_of(item: Item, exists: bool) -> str:
    lines = [title_of(item), f"{item.kind} · {item.generator_id}" + (f" · {item.model}" if item.model else ""),
             date_text(item.created), str(item.path)]
    if not exists:
        lines.append("⚠ " + QCoreApplication.translate("GalleryModel", "The file is missing."))
    return "\n".join(lines)
