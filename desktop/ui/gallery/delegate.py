"""``TileDelegate``: paints one gallery tile — the thumbnail (a placeholder until it is ready), a ★ for a
favourite, a ⚠ for a file that is gone, the title and the kind and date underneath."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop.ui.gallery.model import EXISTS_ROLE, ITEM_ROLE, date_text, title_of
from desktop.ui.gallery.thumbnails import THUMB_SIZE

__all__ = ["TileDelegate", "FAVOURITE_BADGE", "MISSING_BADGE"]

FAVOURITE_BADGE = "★"
MISSING_BADGE = "⚠"
PADDING = 6

_KIND_SYMBOLS = {"image": "▧", "text": "¶", "audio": "♪"}
# Enum values read once: Qt's Python enums cost microseconds per operation, and a tile is painted per frame.
_SELECTED = QStyle.StateFlag.State_Selected.value
_MOUSE_OVER = QStyle.StateFlag.State_MouseOver.value
_HAS_FOCUS = QStyle.StateFlag.State_HasFocus.value
_ALIGN_CENTER = int(Qt.AlignmentFlag.AlignCenter.value)
_ALIGN_LEFT_MIDDLE = int((Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter).value)
_ELIDE_RIGHT = Qt.TextElideMode.ElideRight
_HIGHLIGHT, _ALTERNATE_BASE = QPalette.ColorRole.Highlight, QPalette.ColorRole.AlternateBase
_MIDLIGHT, _MID = QPalette.ColorRole.Midlight, QPalette.ColorRole.Mid
_TEXT, _HIGHLIGHTED_TEXT = QPalette.ColorRole.Text, QPalette.ColorRole.HighlightedText
_GOLD, _ORANGE = QColor("#f5c518"), QColor("#ff9f1a")
CREDENTIALS_BADGES = {"valid": ("✓", QColor("#3ccf6a")), "tampered": ("⚠", _ORANGE),
                      "other_signer": ("✓", QColor("#6aa8ff"))}
"""The mark of an item whose Content Credentials were checked (in the details pane), by the verdict's state."""


@dataclass(frozen=True)
class _Fonts:
    symbol: QFont
    badge: QFont
    small: QFont
    metrics: QFontMetrics
    small_metrics: QFontMetrics


class TileDelegate(QStyledItemDelegate):
    """Fixed-size tiles (the view uses uniform item sizes: only one size hint is ever computed)."""

    def __init__(self, thumb_size: int = THUMB_SIZE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size
        self._fonts_key: str | None = None
        self._fonts_cache: _Fonts | None = None
        self._captions: dict[tuple[Any, ...], tuple[str, str]] = {}
        self.credentials: dict[int, str] = {}
        """Item id → the state of its Content Credentials, for the items checked so far (none checked eagerly)."""

    def tile_size(self, font: QFont) -> QSize:
        line = QFontMetrics(font).height()
        return QSize(self.thumb_size + 2 * PADDING, self.thumb_size + 2 * PADDING + 2 * line + 4)

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:  # noqa: N802
        return self.tile_size(option.font)

    @staticmethod
    def badges(index: QModelIndex | QPersistentModelIndex) -> list[str]:
        """The badges the tile shows: ★ when the item is a favourite, ⚠ when its file is missing."""
        item = index.data(ITEM_ROLE)
        if item is None:
            return []
        badges = []
        if getattr(item, "favourite", False):
            badges.append(FAVOURITE_BADGE)
        if index.data(EXISTS_ROLE) is False:
            badges.append(MISSING_BADGE)
        return badges

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        painter.save()
        try:
            self._paint(painter, option, index)
        finally:
            painter.restore()

    def _fonts(self, font: QFont) -> _Fonts:
        """Fonts and metrics derived from the view's font, made once per font (painting runs per tile)."""
        key = font.key()
        if self._fonts_key != key:
            symbol = QFont(font)
            symbol.setPixelSize(max(10, self.thumb_size // 4))
            badge = QFont(font)
            badge.setPixelSize(max(12, self.thumb_size // 8))
            small = QFont(font)
            if font.pointSizeF() > 0:
                small.setPointSizeF(max(6.0, font.pointSizeF() * 0.85))
            else:
                small.setPixelSize(max(8, int(font.pixelSize() * 0.85)))
            self._fonts_cache = _Fonts(symbol, badge, small, QFontMetrics(font), QFontMetrics(small))
            self._fonts_key = key
            self._captions.clear()
        return self._fonts_cache

    def _caption(self, row: Any, title: str, width: int, fonts: _Fonts) -> tuple[str, str]:
        """The tile's two elided lines, cached per item and width (eliding is the costliest part of a tile)."""
        item = row.item
        key = (item.id, width, item.favourite, title)
        caption = self._captions.get(key)
        if caption is None:
            info = f"{item.kind} · {date_text(item.created)}"
            caption = (fonts.metrics.elidedText(title, _ELIDE_RIGHT, width),
                       fonts.small_metrics.elidedText(info, _ELIDE_RIGHT, width))
            if len(self._captions) > 4096:
                self._captions.clear()
            self._captions[key] = caption
        return caption

    def _paint(self, painter: QPainter, option: QStyleOptionViewItem,
               index: QModelIndex | QPersistentModelIndex) -> None:
        palette: QPalette = option.palette
        rect: QRect = option.rect
        state = option.state.value
        selected = bool(state & _SELECTED)
        if selected:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), palette.color(_HIGHLIGHT))
        elif state & _MOUSE_OVER:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), palette.color(_ALTERNATE_BASE))
        fonts = self._fonts(option.font)
        box = QRect(rect.left() + PADDING, rect.top() + PADDING, self.thumb_size, self.thumb_size)
        model = index.model()
        row = model.row_at(index.row()) if hasattr(model, "row_at") else None  # one look-up, not one per role
        item = row.item if row is not None else None
        thumbnail = model.thumbnail(row) if row is not None else None
        if thumbnail is not None and not thumbnail.image.isNull():
            image = thumbnail.image
            target = QRect(0, 0, image.width(), image.height())
            target.moveCenter(box.center())
            painter.drawImage(target, image)
        else:
            painter.fillRect(box, palette.color(_MIDLIGHT))
            painter.setPen(palette.color(_MID))
            painter.setFont(fonts.symbol)
            painter.drawText(box, _ALIGN_CENTER, _KIND_SYMBOLS.get(getattr(item, "kind", ""), "…"))
        if row is not None and (item.favourite or not row.exists):
            painter.setFont(fonts.badge)
            if item.favourite:
                self._badge(painter, QRect(box.left() + 2, box.top() + 2, 22, 22), FAVOURITE_BADGE, _GOLD)
            if not row.exists:
                self._badge(painter, QRect(box.right() - 23, box.top() + 2, 22, 22), MISSING_BADGE, _ORANGE)
        credentials = CREDENTIALS_BADGES.get(self.credentials.get(item.id, "")) if item is not None else None
        if credentials is not None:
            painter.setFont(fonts.badge)
            self._badge(painter, QRect(box.left() + 2, box.bottom() - 23, 22, 22), *credentials)
        if row is not None:
            text_color = palette.color(_HIGHLIGHTED_TEXT if selected else _TEXT)
            line = fonts.metrics.height()
            text_rect = QRect(rect.left() + PADDING, box.bottom() + 4, rect.width() - 2 * PADDING, line)
            title, info = self._caption(row, title_of(item), text_rect.width(), fonts)
            painter.setFont(option.font)
            painter.setPen(text_color)
            painter.drawText(text_rect, _ALIGN_LEFT_MIDDLE, title)
            painter.setFont(fonts.small)
            dim = QColor(text_color)
            dim.setAlphaF(0.7)
            painter.setPen(dim)
            painter.drawText(text_rect.translated(0, line), _ALIGN_LEFT_MIDDLE, info)
        if state & _HAS_FOCUS:
            painter.setPen(palette.color(_HIGHLIGHT))
            painter.drawRect(rect.adjusted(0, 0, -1, -1))

    @staticmethod
    def _badge(painter: QPainter, rect: QRect, text: str, color: QColor) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawEllipse(rect)
        painter.setPen(color)
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
