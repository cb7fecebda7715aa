"""Light, dark, or following the system: the Fusion style with one of two palettes, plus a small style sheet.

The palettes carry the colours (so every widget, a third-party panel's included, follows without knowing); the
style sheets in ``resources/themes/<light|dark>.qss`` only add what a palette has no role for: the colour of error
text, for widgets whose ``error`` property is true (:func:`mark_error`). Both palettes keep text, selected text and
tooltips at a WCAG contrast ratio of at least 4.5 against their background, disabled text at least 3.0.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from desktop.resources import resources_dir
from desktop.settings import THEMES

log = logging.getLogger(__name__)

_Role = QPalette.ColorRole
_THEME_PROPERTY = "studiolo_theme"  # the theme chosen, kept on the QApplication

_LIGHT = {
    _Role.Window: "#efefef", _Role.WindowText: "#000000", _Role.Base: "#ffffff", _Role.AlternateBase: "#f5f5f5",
    _Role.ToolTipBase: "#ffffdc", _Role.ToolTipText: "#000000", _Role.Text: "#000000", _Role.Button: "#efefef",
    _Role.ButtonText: "#000000", _Role.BrightText: "#ffffff", _Role.Highlight: "#2a6fb0",
    _Role.HighlightedText: "#ffffff", _Role.Link: "#0b57d0", _Role.LinkVisited: "#6a3ab2",
    _Role.PlaceholderText: "#6b6b6b", _Role.Light: "#ffffff", _Role.Midlight: "#cacaca", _Role.Mid: "#b8b8b8",
    _Role.Dark: "#9f9f9f", _Role.Shadow: "#767676",
}
_LIGHT_DISABLED = {
    _Role.WindowText: "#6e6e6e", _Role.Text: "#6e6e6e", _Role.ButtonText: "#6e6e6e", _Role.Highlight: "#6e6e6e",
    _Role.HighlightedText: "#ffffff", _Role.PlaceholderText: "#6e6e6e", _Role.Base: "#efefef",
}
_DARK = {
    _Role.Window: "#2d2d30", _Role.WindowText: "#e6e6e6", _Role.Base: "#1e1e20", _Role.AlternateBase: "#2a2a2d",
    _Role.ToolTipBase: "#3c3c40", _Role.ToolTipText: "#e6e6e6", _Role.Text: "#e6e6e6", _Role.Button: "#353538",
    _Role.ButtonText: "#e6e6e6", _Role.BrightText: "#ffffff", _Role.Highlight: "#2f65a8",
    _Role.HighlightedText: "#ffffff", _Role.Link: "#6eaaf0", _Role.LinkVisited: "#b39ddb",
    _Role.PlaceholderText: "#8c8c8c", _Role.Light: "#4a4a4e", _Role.Midlight: "#3e3e42", _Role.Mid: "#2a2a2d",
    _Role.Dark: "#1a1a1c", _Role.Shadow: "#0e0e0f",
}
_DARK_DISABLED = {
    _Role.WindowText: "#8a8a8a", _Role.Text: "#8a8a8a", _Role.ButtonText: "#8a8a8a", _Role.Highlight: "#4a4a4e",
    _Role.HighlightedText: "#e6e6e6", _Role.PlaceholderText: "#8a8a8a", _Role.Base: "#2a2a2d",
}


def _palette(colors: dict, disabled: dict) -> QPalette:
    palette = QPalette()
    for role, color in colors.items():
        palette.setColor(role, QColor(color))  # every group
    for role, color in disabled.items():
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(color))
    return palette


def light_palette() -> QPalette:
    """Fusion's light colours, with a darker selection and darker disabled text so both stay legible."""
    return _palette(_LIGHT, _LIGHT_DISABLED)


def dark_palette() -> QPalette:
    return _palette(_DARK, _DARK_DISABLED)


def effective_theme(theme: str, scheme: Qt.ColorScheme | None = None) -> str:
    """``light`` or ``dark``: ``theme`` itself, or for ``system`` what the colour scheme (the system's when
    ``scheme`` is None) says; an unknown scheme is light."""
    if theme in ("light", "dark"):
        return theme
    if scheme is None:
        scheme = QGuiApplication.styleHints().colorScheme()
    return "dark" if scheme == Qt.ColorScheme.Dark else "light"


def style_sheet(name: str) -> str:
    """The style sheet of the ``light`` or ``dark`` theme (empty, logged, when its file cannot be read)."""
    path = resources_dir() / "themes" / f"{name}.qss"
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("cannot read the style sheet %s: %s", path, exc)
        return ""


def current_theme(app: QApplication) -> str:
    """The theme last applied with :func:`apply_theme` (``system`` before that)."""
    value = app.property(_THEME_PROPERTY)
    return value if value in THEMES else "system"


def _show(app: QApplication, scheme: Qt.ColorScheme | None = None) -> None:
    name = effective_theme(current_theme(app), scheme)
    app.setPalette(dark_palette() if name == "dark" else light_palette())
    app.setStyleSheet(style_sheet(name))


def apply_theme(app: QApplication, theme: str = "system") -> None:
    """Use Fusion with the palette and style sheet of ``theme`` (one of :data:`~desktop.settings.THEMES`) at once,
    on every open window; with ``system``, follow the system's colour scheme when it changes."""
    if theme not in THEMES:
        raise ValueError(f"unknown theme {theme!r}, expected one of {', '.join(THEMES)}")
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    if app.property(_THEME_PROPERTY) is None:  # the first call: follow the system from now on (for "system")
        app.styleHints().colorSchemeChanged.connect(
            lambda scheme: _show(app, scheme) if current_theme(app) == "system" else None)
    app.setProperty(_THEME_PROPERTY, theme)
    _show(app)


def mark_error(widget: QWidget, error: bool = True) -> None:
    """Show ``widget``'s text in the theme's error colour (``error``) or in its usual colour again."""
    if bool(widget.property("error")) == error:
        return
    widget.setProperty("error", error)
    widget.style().unpolish(widget)
    widget.style().polish(widget)
    widget.update()
