"""The main window's layout at 900×600 and 1600×1000, light and dark: the window has the size asked for, and on every
page (each built-in generator's, Gallery, Models, Plugins) no two widgets overlap and no text is cut to less than its
first word (:mod:`desktop.testing.layout`). A screenshot of each is kept: in the test's temporary folder (printed),
and in ``$STUDIOLO_SCREENSHOTS/layout`` when that variable names a folder (``.ci/run`` sets it).

Then the checker itself, on small widgets made to fail each check (and the same widgets with room, to pass)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QPushButton,
    QTableWidget,
    QTabWidget,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.testing.layout import OVERLAY, elided_texts, layout_problems, overlaps, settle_layouts
from desktop.ui.main_window import GALLERY_PAGE, HOST_PAGES
from desktop.ui.page_frame import frame_of
from desktop.ui.screenshots import builtin_window, save_screenshot
from desktop.ui.theme import apply_theme

SIZES = ((900, 600), (1600, 1000))
WAIT = 30_000  # ms: a safety net only


@pytest.fixture
def restore_theme(qapp):
    yield
    apply_theme(qapp, "system")


def shot_folders(tmp_path: Path) -> list[Path]:
    folders = [tmp_path / "screenshots"]
    if os.environ.get("STUDIOLO_SCREENSHOTS"):
        folders.append(Path(os.environ["STUDIOLO_SCREENSHOTS"]) / "layout")
    return folders


def settle(window, page_id: str, qapp, qtbot) -> None:
    """Let what the page shows arrive (the gallery counts its items on a task) and the layouts run."""
    if page_id == GALLERY_PAGE:
        count = window.pages[GALLERY_PAGE].count_label
        qtbot.waitUntil(lambda: bool(count.text()), timeout=WAIT)
    settle_layouts(window)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_at_both_sizes_has_no_overlap_and_no_cut_text(qapp, qtbot, tmp_path, theme, restore_theme):
    window = builtin_window()
    qtbot.addWidget(window)
    apply_theme(qapp, theme)
    window.show()
    qtbot.waitExposed(window)
    pages = [*sorted(window.plugins.generators), *HOST_PAGES]
    assert len(pages) >= 7, pages  # the four built-in generators and the host's three pages
    problems, folders = [], shot_folders(tmp_path)
    print(f"screenshots in {', '.join(map(str, folders))}")
    try:
        for width, height in SIZES:
            for page_id in pages:
                page = window.show_page(page_id)
                window.resize(width, height)
                settle(window, page_id, qapp, qtbot)
                assert page.isVisible() and window.current_page() is page
                assert (window.width(), window.height()) == (width, height), f"{page_id}: {window.size()}"
                problems += [f"{theme} {width}×{height} {page_id}: {line}" for line in layout_problems(window)]
                frame = frame_of(page)  # the page fits: no scrolling sideways, nor down on a generator's page
                scrolls = [name for name, bar in (("sideways", frame.horizontalScrollBar()),
                                                  ("down", frame.verticalScrollBar())) if bar.isVisible()]
                if scrolls and (scrolls != ["down"] or page_id in window.plugins.generators):
                    problems.append(f"{theme} {width}×{height} {page_id}: the page scrolls {' and '.join(scrolls)} "
                                    f"(its minimum {page.minimumSizeHint().toTuple()}, room {frame.size().toTuple()})")
                name = f"{theme}-{width}x{height}-{page_id.strip(':').replace('.', '-')}.png"
                for folder in folders:
                    assert save_screenshot(window, folder / name).stat().st_size > 1000
    finally:
        window.close()
    assert not problems, "\n".join(problems)


# -- the checker itself ---------------------------------------------------------------------------------------


def shown(widget: QWidget, qtbot, width: int, height: int | None = None) -> QWidget:
    """``widget`` shown at ``width`` (and ``height``) px, its layouts run."""
    qtbot.addWidget(widget)
    widget.resize(width, height or widget.sizeHint().height())
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def stacked(*children: QWidget) -> QWidget:
    container = QWidget()
    layout = QVBoxLayout(container)
    for child in children:
        layout.addWidget(child)
    return container


def test_widgets_squeezed_over_one_another_are_found(qtbot):
    def page(height: int) -> QWidget:
        preview = QLabel("preview")
        preview.setObjectName("preview")
        preview.setMinimumHeight(120)  # its own minimum wins over the layout: it spills over the next widget
        details = QLabel("details")
        details.setObjectName("details")
        window = shown(QWidget(), qtbot, 300, 400)
        inner = stacked(preview, details)  # given its size by hand (a top-level window keeps its minimum size)
        inner.setParent(window)
        inner.setGeometry(0, 0, 300, height)
        inner.show()
        return window

    problems = overlaps(page(80))
    assert any(line.startswith("overlap: QLabel 'preview'") and "QLabel 'details'" in line for line in problems), \
        problems
    assert any(line.startswith("squeezed: QWidget is 300×80") for line in problems), problems
    assert layout_problems(page(400)) == []


def test_a_widget_placed_by_hand_over_laid_out_ones_is_found_unless_it_is_an_overlay(qtbot):
    page = shown(stacked(QLabel("one"), QLabel("two")), qtbot, 300, 200)
    stray = QPushButton("Cancelling…", page)  # a child the layout does not place: drawn at (0, 0)
    stray.setObjectName("probe")
    stray.show()
    assert any(line.startswith("drawn over: QPushButton 'probe'") for line in overlaps(page)), overlaps(page)
    stray.setProperty(OVERLAY, True)  # a floating zoom bar, say: declared
    assert overlaps(page) == []


def test_a_label_cut_to_less_than_its_first_word_is_found(qtbot):
    plain = shown(QLabel("Download the model"), qtbot, 30)
    assert elided_texts(plain) and "'Download the model'" in elided_texts(plain)[0]
    assert elided_texts(shown(QLabel("Download the model"), qtbot, 80)) == []  # the end is cut: the start reads

    centred = QLabel("Download the model")
    centred.setAlignment(Qt.AlignmentFlag.AlignCenter)  # centred, a text too wide loses its start too
    assert elided_texts(shown(centred, qtbot, 80))

    wrapped = QLabel("Studiolo runs generators")
    wrapped.setWordWrap(True)
    assert elided_texts(shown(wrapped, qtbot, 40))
    wrapped_roomy = QLabel("Studiolo runs generators")
    wrapped_roomy.setWordWrap(True)
    assert elided_texts(shown(wrapped_roomy, qtbot, 120)) == []

    heading = QLabel("<h1>Generators</h1>")  # rich text is measured in its own font: a heading's is larger
    width = heading.fontMetrics().horizontalAdvance("Generators") + 4  # room for the word in the normal font
    assert elided_texts(shown(heading, qtbot, width))
    assert elided_texts(shown(QLabel("<h1>Generators</h1>"), qtbot, 3 * width)) == []


@pytest.mark.parametrize("make", [
    lambda: QPushButton("Download"),
    lambda: QToolButton(text="Download"),
    lambda: QCheckBox("Favourite"),
], ids=["push", "tool", "check"])
def test_a_button_cut_to_less_than_its_first_word_is_found(qtbot, make):
    narrow = make()
    narrow.setMinimumWidth(0)
    narrow.setMinimumSize(0, 0)
    narrow.setFixedWidth(30)
    found = elided_texts(shown(stacked(narrow), qtbot, 30))
    assert found and type(narrow).__name__ in found[0], found
    assert elided_texts(shown(stacked(make()), qtbot, 300)) == []


def test_a_combo_box_group_box_and_tab_cut_are_found(qtbot):
    combo = QComboBox()
    combo.addItems(["Choose a preset…", "Precise"])
    combo.setFixedWidth(60)
    box = QGroupBox("Recommended")
    box.setFixedWidth(50)
    QVBoxLayout(box).addWidget(QLabel("x"))
    tabs = QTabWidget()
    tabs.tabBar().setUsesScrollButtons(False)
    tabs.tabBar().setElideMode(Qt.TextElideMode.ElideRight)
    tabs.addTab(QWidget(), "Text to image")
    tabs.addTab(QWidget(), "Image to image")
    tabs.addTab(QWidget(), "Inpainting")
    tabs.setFixedWidth(90)
    found = elided_texts(shown(stacked(combo, box, tabs), qtbot, 200, 300))
    assert any("QComboBox" in line and "'Choose a preset…'" in line for line in found), found
    assert any("QGroupBox" in line and "'Recommended'" in line for line in found), found
    assert any(line.startswith("cut: tab") for line in found), found

    roomy_combo = QComboBox()
    roomy_combo.addItems(["Choose a preset…"])
    roomy_tabs = QTabWidget()
    roomy_tabs.addTab(QWidget(), "Text to image")
    assert elided_texts(shown(stacked(roomy_combo, QGroupBox("Recommended"), roomy_tabs), qtbot, 400, 300)) == []


def test_cut_header_sections_and_tree_items_are_found(qtbot):
    table = QTableWidget(1, 2)
    table.setHorizontalHeaderLabels(["Download", "Licence"])
    table.horizontalHeader().resizeSection(0, 24)
    found = elided_texts(shown(table, qtbot, 300, 200))
    assert any("column 'Download'" in line for line in found), found

    def sidebar(width: int) -> QTreeWidget:
        tree = QTreeWidget()
        tree.setObjectName("sidebar")
        tree.setHeaderHidden(True)
        kind = QTreeWidgetItem(tree, ["Image"])
        QTreeWidgetItem(kind, ["Stable Diffusion"])
        kind.setExpanded(True)
        return shown(tree, qtbot, width, 200)

    found = elided_texts(sidebar(70))  # the child's indentation leaves it too little room for "Stable"
    assert any("item 'Stable Diffusion' of QTreeWidget 'sidebar'" in line for line in found), found
    assert elided_texts(sidebar(300)) == []
