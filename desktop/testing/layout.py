"""Layout checks over a widget tree, for tests: nothing drawn over something else, no text cut to nothing.

:func:`layout_problems` runs both checks on a shown window (or any visible widget) and returns what it finds as
human-readable lines, each naming the widget (its class, its ``objectName`` or ``accessibleName``, and its text);
an empty list means the layout is sound. Use it after ``show()`` and a resize, once the layouts have run::

    settle_layouts(window)
    problems = layout_problems(window)
    assert not problems, "\\n".join(problems)

:func:`overlaps` — **no two top-level widgets of a page overlap**. The widgets compared are, for every visible
widget of the tree, its visible child widgets that are *laid out side by side by the same container*: the widgets
of one layout (its nested layouts included), or the panes of one ``QSplitter``. Two of them whose rectangles share
any area overlap. What is not compared: widgets that are not visible (the stacked pages and tabs not shown, a
collapsed splitter pane), windows and popups (dialogs, menus, tooltips), splitter handles, and children placed by
hand without a layout (a scroll area's viewport and scroll bars, a tab widget's bar and stack, overlays such as a
floating tool bar — their position is their owner's business). The check goes down the whole tree (into scroll
areas' contents, the current tab and page), so "a page" is any container: a window's central widget, a dock, a form.
It also reports a container whose layout has less room than its minimum size: its widgets are squeezed below their
minimum sizes, which is how they come to be drawn over one another (a widget's own minimum size wins over the
layout) or cut.

:func:`elided_texts` — **no visible text is cut to less than its first word.** Where a text is drawn from its
start (left-aligned, or elided with "…" at its end), its first word must fit the room the widget gives its text;
where it is centred or right-aligned, a text too wide loses its start, so the whole text must fit. Checked:
``QLabel`` (plain or rich text, word-wrapped or not; for a word-wrapped label no word may be wider than the label,
since a word that does not fit is cut), ``QAbstractButton`` (push and tool buttons: centred; check boxes and radio
buttons: from the start), a ``QComboBox``'s current text, a ``QGroupBox``'s title, a ``QTabBar``'s tab texts, the
sections of a visible ``QHeaderView``, and the items of a ``QTreeView``/``QTableView``/``QListView`` drawn by a
standard ``QStyledItemDelegate`` (their texts are elided at their end: the first word must fit the item's text
rectangle, indentation and icon excluded). Widths are measured with ``QFontMetrics.horizontalAdvance`` in the
widget's own font (rich text: laid out by ``QTextDocument`` in that font, headings at their own size).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from PySide6.QtCore import QAbstractListModel, QModelIndex, QRect
from PySide6.QtGui import QFontMetrics, Qt, QTextCursor, QTextDocument  # (QtGui's Qt has mightBeRichText)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLayout,
    QListView,
    QPushButton,
    QRadioButton,
    QSplitter,
    QSplitterHandle,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionButton,
    QStyleOptionComboBox,
    QStyleOptionGroupBox,
    QStyleOptionViewItem,
    QTabBar,
    QTableView,
    QTreeView,
    QWidget,
)

__all__ = ["OVERLAY", "describe", "elided_texts", "first_word", "layout_problems", "overlaps", "settle_layouts"]

OVERLAY = "layout_overlay"  # a widget with this property true floats over others on purpose (see overlaps)
_SLACK = 1  # pixels of rounding a text may exceed its room by


def settle_layouts(root: QWidget, rounds: int = 5) -> None:
    """Let the layouts under ``root`` catch up: deliver the posted events (a task's result that gives a label its
    text, the layout requests that follow) and run every invalidated layout now, again until the geometries stop
    changing (at most ``rounds`` times; a scroll area resizes its contents on an event a layout run posts). Call it
    after ``show()`` or a resize, before the checks."""
    def geometries() -> list:
        return [widget.geometry() for widget in root.findChildren(QWidget)]

    before = None
    for _ in range(rounds):
        QApplication.processEvents()
        for widget in [root, *root.findChildren(QWidget)]:  # parents before their children
            if widget.layout() is not None and widget.isVisible():
                widget.layout().activate()
        after = geometries()
        if after == before:
            return
        before = after


def layout_problems(root: QWidget) -> list[str]:
    """Both checks on ``root`` and everything visible under it: :func:`overlaps`, then :func:`elided_texts`."""
    return overlaps(root) + elided_texts(root)


def describe(widget: QWidget, text: str | None = None) -> str:
    """``Class 'name'`` (its objectName, else its accessibleName) and its text, and where it is: the named
    widgets it sits in, innermost last."""
    def name(w: QWidget) -> str:
        label = w.objectName() or w.accessibleName()
        return f"{type(w).__name__} '{label}'" if label else type(w).__name__

    path, parent = [], widget.parentWidget()
    while parent is not None and not parent.isWindow():
        if parent.objectName() and not parent.objectName().startswith("qt_"):
            path.append(parent.objectName())
        parent = parent.parentWidget()
    where = f" in {' > '.join(reversed(path))}" if path else ""
    shown = f" {text!r}" if text else ""
    return f"{name(widget)}{shown}{where}"


# -- overlaps ---------------------------------------------------------------------------------------------------


def _visible_tree(root: QWidget) -> Iterator[QWidget]:
    """``root`` and its visible descendants, windows and popups excluded (depth first)."""
    stack = [root]
    while stack:
        widget = stack.pop()
        yield widget
        stack.extend(child for child in reversed(_children(widget)) if child.isVisible() and not child.isWindow())


def _children(widget: QWidget) -> list[QWidget]:
    return widget.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly)


def _layout_widgets(layout: QLayout) -> list[QWidget]:
    """The widgets ``layout`` places, those of its nested layouts included."""
    found = []
    for i in range(layout.count()):
        item = layout.itemAt(i)
        if item.widget() is not None:
            found.append(item.widget())
        elif item.layout() is not None:
            found += _layout_widgets(item.layout())
    return found


def _siblings(widget: QWidget) -> list[QWidget]:
    """The visible widgets ``widget`` lays out side by side: its layout's, or its splitter's panes."""
    if isinstance(widget, QSplitter):
        placed = [widget.widget(i) for i in range(widget.count())]
    elif widget.layout() is not None:
        placed = _layout_widgets(widget.layout())
    else:
        return []
    return [w for w in placed if w.isVisible() and not w.isWindow() and not isinstance(w, QSplitterHandle)
            and not w.size().isEmpty()]


def _strays(container: QWidget, placed: list[QWidget]) -> list[QWidget]:
    """The visible children of a container with a layout that its layout does not place, Qt's own parts (named
    ``qt_…``) and declared overlays (the property :data:`OVERLAY` true) excepted."""
    if container.layout() is None or isinstance(container, QSplitter):
        return []
    managed = set(_layout_widgets(container.layout()))
    return [child for child in _children(container)
            if child.isVisible() and not child.isWindow() and child not in managed and child not in placed
            and not child.objectName().startswith("qt_") and not child.property(OVERLAY)
            and not child.size().isEmpty()]


def overlaps(root: QWidget) -> list[str]:
    """Widgets laid out by the same container that share any area, and containers given less room than their
    layout's minimum (see the module's docstring)."""
    problems = []
    for container in _visible_tree(root):
        placed = _siblings(container)
        for i, first in enumerate(placed):
            for second in placed[i + 1:]:
                shared = first.geometry().intersected(second.geometry())
                if not shared.isEmpty():
                    problems.append(f"overlap: {describe(first, _text_of(first))} and "
                                    f"{describe(second, _text_of(second))} share {shared.width()}×{shared.height()} px")
        for stray in _strays(container, placed):
            for other in placed:
                shared = stray.geometry().intersected(other.geometry())
                if not shared.isEmpty():
                    problems.append(f"drawn over: {describe(stray, _text_of(stray))}, placed by hand, covers "
                                    f"{describe(other, _text_of(other))} ({shared.width()}×{shared.height()} px)")
        layout = container.layout()
        if layout is not None and placed and not isinstance(container, QSplitter):
            needed, has = layout.totalMinimumSize(), container.size()
            if has.width() < needed.width() or has.height() < needed.height():
                problems.append(f"squeezed: {describe(container)} is {has.width()}×{has.height()} but its layout "
                                f"needs {needed.width()}×{needed.height()}")
    return problems


def _text_of(widget: QWidget) -> str:
    for attribute in ("text", "currentText", "title"):
        getter = getattr(widget, attribute, None)
        if callable(getter):
            try:
                value = getter()
            except TypeError:
                continue
            if isinstance(value, str):
                return _plain(value)[:40]
    return ""


# -- elided texts -----------------------------------------------------------------------------------------------


def _plain(text: str) -> str:
    if Qt.mightBeRichText(text):
        document = QTextDocument()
        document.setHtml(text)
        return document.toPlainText()
    return text


def first_word(text: str) -> str:
    """The first word of ``text`` (mnemonic ``&`` markers removed), or ``""``."""
    words = re.sub(r"&(?!&)", "", text).replace("&&", "&").split()
    return words[0] if words else ""


def _words(text: str) -> list[str]:
    return re.sub(r"&(?!&)", "", text).replace("&&", "&").split()


def _rich_width(widget: QWidget, html: str, *, first_only: bool = False, widest_word: bool = False) -> float:
    """The width ``html`` takes in ``widget``'s font on one line: all of it, its first word only, or (``widest_word``)
    its widest word."""
    document = QTextDocument()
    document.setDefaultFont(widget.font())
    document.setDocumentMargin(0)
    document.setHtml(html)
    if widest_word:
        document.setTextWidth(1)  # every line as narrow as can be: one word a line
    elif first_only:
        match = re.match(r"\s*(\S+)", document.toPlainText())
        if match is None:
            return 0.0
        cursor = QTextCursor(document)  # keep the first word only, in its own format (a heading's size, bold)
        cursor.setPosition(match.end())
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        cursor.setPosition(0)
        cursor.setPosition(match.start(1), QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
    return document.idealWidth()


def _needs(metrics: QFontMetrics, text: str, aligned_start: bool) -> tuple[str, int]:
    """What must fit of ``text`` drawn from its start (its first word) or centred (all of it), and its width."""
    clean = " ".join(_words(text)) if "&" in text else text.strip()
    part = first_word(text) if aligned_start else clean
    return part, metrics.horizontalAdvance(part)


def _label_problem(label: QLabel) -> str | None:
    text = label.text()
    if not text.strip() or (label.pixmap() is not None and not label.pixmap().isNull()):
        return None
    room = label.contentsRect().width() - 2 * label.margin() - max(label.indent(), 0)
    rich = label.textFormat() == Qt.TextFormat.RichText or (
        label.textFormat() == Qt.TextFormat.AutoText and Qt.mightBeRichText(text))
    alignment = label.alignment()
    from_start = bool(alignment & (Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignLeading)) or not (
        alignment & (Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTrailing))
    if label.wordWrap():
        widest = (_rich_width(label, text, widest_word=True) if rich else
                  max(QFontMetrics(label.font()).horizontalAdvance(word) for word in _words(text) or [""]))
        if widest > room + _SLACK:
            return (f"cut: {describe(label, _plain(text)[:60])} has a word {widest:.0f} px wide in {room} px "
                    "(word-wrapped)")
        return None
    if rich:
        part = first_word(_plain(text)) if from_start else _plain(text)
        width = _rich_width(label, text, first_only=from_start)
    else:
        part, width = _needs(QFontMetrics(label.font()), text, from_start)
    if width > room + _SLACK:
        return (f"cut: {describe(label, _plain(text)[:60])} shows {room} px of the {width:.0f} px that "
                f"{part[:30]!r} needs")
    return None


def _button_room(button: QAbstractButton) -> int:
    """The width a button gives its text."""
    style = button.style()
    if isinstance(button, (QPushButton, QCheckBox, QRadioButton)):
        option = QStyleOptionButton()
        option.initFrom(button)
        option.text = button.text()
        option.icon = button.icon()
        option.iconSize = button.iconSize()
        element = (QStyle.SubElement.SE_PushButtonContents if isinstance(button, QPushButton) else
                   QStyle.SubElement.SE_CheckBoxContents if isinstance(button, QCheckBox) else
                   QStyle.SubElement.SE_RadioButtonContents)
        room = style.subElementRect(element, option, button).width()
        if isinstance(button, QPushButton):
            room -= 2 * style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin, option, button) // 2
            if button.menu() is not None:
                room -= style.pixelMetric(QStyle.PixelMetric.PM_MenuButtonIndicator, option, button)
        if not button.icon().isNull():
            room -= button.iconSize().width() + 4
        return room
    # a tool button (or another kind): the room its size hint keeps beside its text
    padding = button.sizeHint().width() - QFontMetrics(button.font()).horizontalAdvance(button.text())
    return button.width() - max(padding, 0)


def _button_problem(button: QAbstractButton) -> str | None:
    text = button.text()
    if not text.strip():
        return None
    from_start = isinstance(button, (QCheckBox, QRadioButton))
    part, width = _needs(QFontMetrics(button.font()), text, from_start)
    room = _button_room(button)
    if width > room + _SLACK:
        return f"cut: {describe(button, text)} shows {room} px of the {width} px that {part[:30]!r} needs"
    return None


def _combo_problem(combo: QComboBox) -> str | None:
    text = combo.currentText()
    if not text.strip():
        return None
    option = QStyleOptionComboBox()
    option.initFrom(combo)
    option.editable = combo.isEditable()
    option.currentText = text
    option.currentIcon = combo.itemIcon(combo.currentIndex()) if combo.currentIndex() >= 0 else option.currentIcon
    option.iconSize = combo.iconSize()
    room = combo.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                        QStyle.SubControl.SC_ComboBoxEditField, combo).width()
    if not option.currentIcon.isNull():
        room -= combo.iconSize().width() + 4
    part, width = _needs(QFontMetrics(combo.font()), text, True)
    if width > room + _SLACK:
        return f"cut: {describe(combo, text)} shows {room} px of the {width} px that {part[:30]!r} needs"
    return None


def _group_problem(box: QGroupBox) -> str | None:
    if not box.title().strip():
        return None
    option = QStyleOptionGroupBox()
    option.initFrom(box)
    option.text = box.title()
    option.subControls = QStyle.SubControl.SC_GroupBoxLabel
    if box.isCheckable():
        option.subControls |= QStyle.SubControl.SC_GroupBoxCheckBox
    label = box.style().subControlRect(QStyle.ComplexControl.CC_GroupBox, option,
                                       QStyle.SubControl.SC_GroupBoxLabel, box)
    room = min(label.right(), box.rect().right()) - label.left() + 1
    part, width = _needs(QFontMetrics(box.font()), box.title(), True)
    if width > room + _SLACK:
        return f"cut: {describe(box, box.title())} shows {room} px of the {width} px that {part[:30]!r} needs"
    return None


def _tab_problems(bar: QTabBar) -> list[str]:
    metrics, problems = QFontMetrics(bar.font()), []
    for i in range(bar.count()):
        text = bar.tabText(i)
        if not text.strip() or not bar.isTabVisible(i):
            continue
        padding = bar.tabSizeHint(i).width() - metrics.horizontalAdvance(text)
        room = bar.tabRect(i).intersected(bar.rect()).width() - max(padding, 0)
        part, width = _needs(metrics, text, True)
        if width > room + _SLACK:
            problems.append(f"cut: tab {text!r} of {describe(bar)} shows {room} px of the {width} px that "
                            f"{part[:30]!r} needs")
    return problems


def _header_problems(header: QHeaderView) -> list[str]:
    model, problems = header.model(), []
    if model is None:
        return problems
    metrics = QFontMetrics(header.font())
    for logical in range(header.count()):
        if header.isSectionHidden(logical) or header.sectionSize(logical) <= 0:
            continue
        text = model.headerData(logical, header.orientation(), Qt.ItemDataRole.DisplayRole)
        if not isinstance(text, str) or not text.strip():
            continue
        visual = header.sectionViewportPosition(logical)
        if visual + header.sectionSize(logical) <= 0 or visual >= header.viewport().width():
            continue  # scrolled out of view
        padding = header.sectionSizeFromContents(logical).width() - metrics.horizontalAdvance(text)
        room = header.sectionSize(logical) - max(padding, 0)
        part, width = _needs(metrics, text, True)
        if width > room + _SLACK:
            problems.append(f"cut: column {text!r} of {describe(header.parentWidget() or header)} shows {room} px "
                            f"of the {width} px that {part[:30]!r} needs")
    return problems


def _indexes(view: QAbstractItemView) -> Iterator[QModelIndex]:
    """The indexes of ``view`` on screen (rows of collapsed branches and scrolled away ones skipped)."""
    model = view.model()
    if model is None:
        return
    viewport = view.viewport().rect()
    pending = [QModelIndex()]
    while pending:
        parent = pending.pop()
        for row in range(model.rowCount(parent)):
            columns = 1 if isinstance(model, QAbstractListModel) else model.columnCount(parent)  # (private there)
            for column in range(columns):
                index = model.index(row, column, parent)
                if isinstance(view, QTableView) and (view.isRowHidden(row) or view.isColumnHidden(column)):
                    continue
                if isinstance(view, QTreeView) and (view.isRowHidden(row, parent) or view.isColumnHidden(column)):
                    continue
                if isinstance(view, QListView) and view.isRowHidden(row):
                    continue
                rect = view.visualRect(index)
                if rect.isValid() and rect.intersects(viewport):
                    yield index
            first = model.index(row, 0, parent)
            if isinstance(view, QTreeView) and model.hasChildren(first) and view.isExpanded(first):
                pending.append(first)


def _item_problems(view: QAbstractItemView) -> list[str]:
    if isinstance(view, QListView) and view.viewMode() == QListView.ViewMode.IconMode:
        return []
    problems = []
    viewport = view.viewport().rect()
    style = view.style()
    for index in _indexes(view):
        delegate = view.itemDelegateForIndex(index)
        if type(delegate) is not QStyledItemDelegate or view.indexWidget(index) is not None:
            continue  # a custom delegate draws as it likes; a widget in a cell is checked as a widget
        text = index.data(Qt.ItemDataRole.DisplayRole)
        if not isinstance(text, str) or not text.strip():
            continue
        option = QStyleOptionViewItem()
        option.initFrom(view)
        option.rect = view.visualRect(index)
        option.features |= QStyleOptionViewItem.ViewItemFeature.HasDisplay
        option.text = text
        option.displayAlignment = Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
        font = index.data(Qt.ItemDataRole.FontRole)
        if font is not None:
            option.font = font
            option.fontMetrics = QFontMetrics(font)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if icon is not None:
            option.features |= QStyleOptionViewItem.ViewItemFeature.HasDecoration
            option.decorationSize = view.iconSize() if view.iconSize().isValid() else option.decorationSize
        text_rect = style.subElementRect(QStyle.SubElement.SE_ItemViewItemText, option, view)
        margin = style.pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin, None, view) + 1
        shown = QRect(text_rect.left(), text_rect.top(), text_rect.width(), text_rect.height()).intersected(viewport)
        room = shown.width() - 2 * margin
        part, width = _needs(option.fontMetrics, text, True)
        if width > room + _SLACK:
            problems.append(f"cut: item {text[:40]!r} of {describe(view)} shows {room} px of the {width} px that "
                            f"{part[:30]!r} needs")
    return problems


def elided_texts(root: QWidget) -> list[str]:
    """Visible texts under ``root`` cut to less than their first word (see the module's docstring)."""
    problems: list[str] = []
    for widget in _visible_tree(root):
        if widget.size().isEmpty():
            continue
        if isinstance(widget, QLabel):
            problem = _label_problem(widget)
        elif isinstance(widget, QAbstractButton):
            problem = _button_problem(widget)
        elif isinstance(widget, QComboBox):
            problem = _combo_problem(widget)
        elif isinstance(widget, QGroupBox):
            problem = _group_problem(widget)
        elif isinstance(widget, QTabBar):
            problems += _tab_problems(widget)
            continue
        elif isinstance(widget, QHeaderView):
            if widget.orientation() == Qt.Orientation.Horizontal:
                problems += _header_problems(widget)
            continue
        elif isinstance(widget, (QTreeView, QTableView, QListView)):
            problems += _item_problems(widget)
            continue
        else:
            continue
        if problem:
            problems.append(problem)
    return problems
