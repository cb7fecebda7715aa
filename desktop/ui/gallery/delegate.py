"""``TileDelegate``: paints one gallery tile — the thumbnail (a placeholder until it is ready), a ★ for a
favourite, a ⚠ for a file that is gone, the title and the kind and date underneath."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop.ui.gallery.model import EXISTS_ROLE, ITEM_ROLE, THUMBNAIL_ROLE, date_text
from desktop.ui.gallery.thumbnails import THUMB_SIZE

__all__ = ["TileDelegate", "FAVOURITE_BADGE", "MISSING_BADGE"]

FAVOURITE_BADGE = "★"
MISSING_BADGE = "⚠"
PADDING = 6

_KIND_SYMBOLS = {"image": "▧", "text": "¶", "audio": "♪"}


class TileDelegate(QStyledItemDelegate):
    """Fixed-size tiles (the view uses uniform item sizes: only one size hint is ever computed)."""

    def __init__(self, thumb_size: int = THUMB_SIZE, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size

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

    def _paint(self, painter: QPainter, option: QStyleOptionViewItem,
               index: QModelIndex | QPersistentModelIndex) -> None:
        palette: QPalette = option.palette
        rect: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect.adjusted(1, 1, -1, -1), palette.color(QPalette.ColorRole.AlternateBase))
        box = QRect(rect.left() + PADDING, rect.top() + PADDING, self.thumb_size, self.thumb_size)
        item = index.data(ITEM_ROLE)
        thumbnail = index.data(THUMBNAIL_ROLE) if item is not None else None
        if thumbnail is not None and not thumbnail.image.isNull():
            image = thumbnail.image
            target = QRect(0, 0, image.width(), image.height())
            target.moveCenter(box.center())
            painter.drawImage(target, image)
        else:
            painter.fillRect(box, palette.color(QPalette.ColorRole.Midlight))
            painter.setPen(palette.color(QPalette.ColorRole.Mid))
            font = QFont(option.font)
            font.setPixelSize(max(10, self.thumb_size // 4))
            painter.setFont(font)
            symbol = _KIND_SYMBOLS.get(getattr(item, "kind", ""), "…")
            painter.drawText(box, int(Qt.AlignmentFlag.AlignCenter), symbol)

        badge_font = QFont(option.font)
        badge_font.setPixelSize(max(12, self.thumb_size // 8))
        painter.setFont(badge_font)
        badges = self.badges(index)
        if FAVOURITE_BADGE in badges:
            self._badge(painter, QRect(box.left() + 2, box.top() + 2, 22, 22), FAVOURITE_BADGE, QColor("#f5c518"))
        if MISSING_BADGE in badges:
            self._badge(painter, QRect(box.right() - 23, box.top() + 2, 22, 22), MISSING_BADGE, QColor("#ff9f1a"))

        text_color = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        metrics = QFontMetrics(option.font)
        line = metrics.height()
        text_rect = QRect(rect.left() + PADDING, box.bottom() + 4, rect.width() - 2 * PADDING, line)
        painter.setFont(option.font)
        painter.setPen(text_color)
        title = index.data(Qt.ItemDataRole.DisplayRole) or ""
        painter.drawText(text_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                         metrics.elidedText(title, Qt.TextElideMode.ElideRight, text_rect.width()))
        if item is not None:
            small = QFont(option.font)
            if option.font.pointSizeF() > 0:
                small.setPointSizeF(max(6.0, option.font.pointSizeF() * 0.85))
            else:
                small.setPixelSize(max(8, int(option.font.pixelSize() * 0.85)))
            painter.setFont(small)
            dim = QColor(text_color)
            dim.setAlphaF(0.7)
            painter.setPen(dim)
            info = f"{item.kind} · {date_text(item.created)}"
            info_rect = text_rect.translated(0, line)
            painter.drawText(info_rect, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter),
                             QFontMetrics(small).elidedText(info, Qt.TextElideMode.ElideRight, info_rect.width()))
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRect(rect.adjusted(0, 0, -1, -1))

    @staticmethod
    def _badge(painter: QPainter, rect: QRect, text: str, color: QColor) -> None:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(0, 0, 0, 150))
        painter.drawEllipse(rect)
        painter.setPen(color)
        painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)
