"""The Light / Dark / System theme: a validated setting, chosen in Settings and applied at once, legible in both.

Legible: for every widget of the main window (every built-in generator page and the host's pages, custom panels
included), the colours its palette gives text against the background that text is drawn on have a WCAG contrast
ratio of at least 4.5 — normal, selected (HighlightedText on Highlight), placeholder, link and tooltip text, and
error text — and disabled text at least 3.0 (WCAG asks nothing of disabled controls; 3.0 keeps them readable).
"""

from __future__ import annotations

import json

import pytest
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from desktop.engine.cache import ModelCache
from desktop.engine.engine import Engine
from desktop.plugins import PluginManager
from desktop.settings import Settings
from desktop.ui.generator_page import ErrorPage
from desktop.ui.main_window import HOST_PAGES, MainWindow
from desktop.ui.theme import apply_theme, current_theme

Role, Group = QPalette.ColorRole, QPalette.ColorGroup
TEXT_PAIRS = [(Role.WindowText, Role.Window), (Role.Text, Role.Base), (Role.ButtonText, Role.Button),
              (Role.HighlightedText, Role.Highlight), (Role.PlaceholderText, Role.Base), (Role.Link, Role.Base),
              (Role.ToolTipText, Role.ToolTipBase)]
DISABLED_PAIRS = [(Role.WindowText, Role.Window), (Role.Text, Role.Base), (Role.ButtonText, Role.Button),
                  (Role.HighlightedText, Role.Highlight)]


def luminance(color: QColor) -> float:
    """WCAG 2 relative luminance."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def contrast(a: QColor, b: QColor) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_the_contrast_formula():
    assert contrast(QColor("black"), QColor("white")) == pytest.approx(21.0)
    assert contrast(QColor("#767676"), QColor("white")) == pytest.approx(4.54, abs=0.01)


def illegible(widget: QWidget) -> list[str]:
    """The colour pairs of ``widget``'s palette below the thresholds, described."""
    widget.ensurePolished()
    palette = widget.palette()
    name = f"{type(widget).__name__}({widget.objectName() or widget.accessibleName()})"
    found = []
    for group, pairs, least in ((Group.Active, TEXT_PAIRS, 4.5), (Group.Inactive, TEXT_PAIRS, 4.5),
                                (Group.Disabled, DISABLED_PAIRS, 3.0)):
        for text, background in pairs:
            ratio = contrast(palette.color(group, text), palette.color(group, background))
            if ratio < least:
                found.append(f"{name}: {group.name} {text.name} on {background.name}: {ratio:.2f} < {least}")
    return found


@pytest.fixture
def restore_theme(qapp):
    yield
    apply_theme(qapp, "system")
    qapp.setStyleSheet("")
    qapp.setPalette(qapp.style().standardPalette())


@pytest.fixture
def window(qtbot, restore_theme):
    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    plugins = PluginManager().load(third_party=False)
    assert plugins.generators, "no built-in generators"
    main = MainWindow(plugins, Engine(plugins, cache=ModelCache()))
    qtbot.addWidget(main)
    main.resize(1600, 1000)
    main.show()
    qtbot.waitExposed(main)
    yield main
    main.close()


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_is_legible(window, qapp, theme):
    apply_theme(qapp, theme)
    expected_dark = theme == "dark"
    assert (qapp.palette().color(Role.Window).lightness() < 80) == expected_dark
    problems = []
    for page_id in [*window.plugins.generators, *HOST_PAGES]:
        page = window.show_page(page_id)
        assert page.isVisible()
        for widget in [window, *window.findChildren(QWidget)]:
            problems += illegible(widget)
    assert not problems, "\n".join(sorted(set(problems)))


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_error_text_is_legible(window, qapp, theme):
    """Error text in the theme's error colour: the panels' status, the settings dialog's, a broken panel's title."""
    apply_theme(qapp, theme)
    shown = []
    for generator_id in window.plugins.generators:
        panel = window.show_page(generator_id).custom_panel
        if panel is not None and hasattr(panel, "_show_error"):
            panel._show_error("The job failed.")
            shown.append(panel.status)
    assert len(shown) >= 3, "the built-in text, image and audio panels"
    window.open_settings()
    dialog = window.settings_dialog
    dialog.show_error("The settings could not be saved.")
    dialog.pickle_check.setChecked(True)
    shown += [dialog.error_label, dialog.pickle_warning]
    broken = ErrorPage("The panel could not be built", "Traceback …", window)
    shown += [label for label in broken.findChildren(QLabel) if label.property("error") is True]
    assert len(shown) >= 6 and all(widget.property("error") is True for widget in shown)
    problems = sum((illegible(widget) for widget in shown), [])
    assert not problems, "\n".join(sorted(set(problems)))
    # and the error colour is not the usual text colour
    assert all(widget.palette().color(Role.WindowText) != qapp.palette().color(Role.WindowText) for widget in shown)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_an_invalid_fields_border_stands_out_in_both_themes(qapp, theme, restore_theme):
    """WCAG 2.1 non-text contrast (1.4.11): 3:1 against the field's background and the window around it."""
    from desktop.api.params_form import INVALID_COLOUR
    from plugins.image.panel import INVALID_STYLE

    apply_theme(qapp, theme)
    palette = qapp.palette()
    assert INVALID_COLOUR in INVALID_STYLE  # the image panel marks its own fields in the same colour
    for role in (Role.Base, Role.Window, Role.AlternateBase):
        assert contrast(QColor(INVALID_COLOUR), palette.color(role)) >= 3.0, (theme, role)


def test_the_theme_setting_is_validated(studiolo_home):
    assert Settings().theme == "system"
    path = Settings.path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for value in ("light", "dark", "system"):
        path.write_text(json.dumps({"theme": value}))
        assert Settings.load().theme == value
    for value in ("Dark", "blue", 1, None, ["dark"]):
        path.write_text(json.dumps({"theme": value}))
        settings = Settings.load()
        assert settings.theme == "system" and any("theme" in w for w in settings.warnings)
    settings = Settings(theme="dark")
    settings.save()
    assert json.loads(path.read_text())["theme"] == "dark" and Settings.load().theme == "dark"


def test_choosing_a_theme_in_settings_applies_it_at_once(window, qapp, qtbot):
    apply_theme(qapp, "light")
    window.open_settings()
    dialog = window.settings_dialog
    assert dialog.theme_combo.currentData() == "system"
    assert [dialog.theme_combo.itemText(i) for i in range(3)] == ["System", "Light", "Dark"]
    page = window.show_page(next(iter(window.plugins.generators)))
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    with qtbot.waitSignal(dialog.settings_changed):
        assert dialog.apply()
    assert current_theme(qapp) == "dark" and window.engine.settings.theme == "dark"
    assert qapp.palette().color(Role.Window).lightness() < 80
    assert page.palette().color(Role.Window).lightness() < 80  # an open page follows without being rebuilt
    assert Settings.load().theme == "dark"
    window.open_settings()
    dialog = window.settings_dialog
    assert dialog.theme_combo.currentData() == "dark"
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("light"))
    assert dialog.apply()
    assert qapp.palette().color(Role.Window).lightness() > 180 and page.palette().color(Role.Window).lightness() > 180


def test_system_follows_the_colour_scheme_but_a_chosen_theme_does_not(qapp, restore_theme):
    from PySide6.QtCore import Qt

    apply_theme(qapp, "system")
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert qapp.palette().color(Role.Window).lightness() < 80
    apply_theme(qapp, "light")
    qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert qapp.palette().color(Role.Window).lightness() > 180
    with pytest.raises(ValueError, match="unknown theme"):
        apply_theme(qapp, "blue")


def test_the_screenshot_script_saves_both_themes_at_both_sizes(qapp, tmp_path, restore_theme):
    from PySide6.QtGui import QImage

    from desktop.ui.screenshots import save_screenshots

    paths = save_screenshots(tmp_path)
    assert sorted(p.name for p in paths) == ["theme-dark-1600x1000.png", "theme-dark-900x600.png",
                                             "theme-light-1600x1000.png", "theme-light-900x600.png"]

    def mean_lightness(path) -> float:
        image = QImage(str(path))
        pixels = [image.pixelColor(x, y) for x in range(0, image.width(), 17) for y in range(0, image.height(), 17)]
        return sum(c.lightness() for c in pixels) / len(pixels)

    for width in (1600, 900):
        light, dark = (tmp_path / f"theme-{theme}-{width}x{1000 if width == 1600 else 600}.png"
                       for theme in ("light", "dark"))
        assert QImage(str(light)).width() == width == QImage(str(dark)).width()
        assert mean_lightness(dark) < 90 < 180 < mean_lightness(light)
