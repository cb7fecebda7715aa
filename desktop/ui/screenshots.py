"""Screenshots of the main window in the light and dark themes, for the docs.

``python -m desktop.ui.screenshots [FOLDER]`` (FOLDER: ``docs/screenshots`` by default) opens the window offscreen
with the built-in generators, in a throwaway Studiolo home (the user's settings, models and gallery are not
touched), and saves ``theme-<light|dark>-<width>x<height>.png`` at 1600×1000 and 900×600, each showing the image
generator's page.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from desktop.ui.main_window import MainWindow

SIZES = ((1600, 1000), (900, 600))
THEMES = ("light", "dark")
PAGE = "image.diffusers"


def builtin_window() -> MainWindow:
    """The main window over the built-in generators only (no third-party plugin), the first run marked done, not
    shown yet. Needs a QApplication and a Studiolo home (``STUDIOLO_HOME``); its engine is ``window.engine``."""
    from desktop.engine.cache import ModelCache
    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.main_window import MainWindow

    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    plugins = PluginManager().load(third_party=False)
    return MainWindow(plugins, Engine(plugins, cache=ModelCache()))


def save_screenshot(window: QWidget, path: Path) -> Path:
    """Grab ``window`` into the PNG file ``path`` (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def save_screenshots(folder: Path, page_id: str = PAGE) -> list[Path]:
    """Grab the main window (already set up: a QApplication and a Studiolo home) in each theme and size."""
    from PySide6.QtWidgets import QApplication

    from desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    window = builtin_window()
    saved = []
    try:
        window.show()
        if page_id in window.plugins.generators:
            window.show_page(page_id)
        for theme in THEMES:
            apply_theme(app, theme)
            for width, height in SIZES:
                window.resize(width, height)
                app.processEvents()
                saved.append(save_screenshot(window, folder / f"theme-{theme}-{width}x{height}.png"))
    finally:
        window.close()  # and its engine
    return saved


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0]) if args else Path("docs/screenshots")
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory(prefix="studiolo-screenshots-") as home:
        os.environ["STUDIOLO_HOME"] = home
        for path in save_screenshots(folder):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
