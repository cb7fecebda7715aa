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

SIZES = ((1600, 1000), (900, 600))
THEMES = ("light", "dark")
PAGE = "image.diffusers"


def save_screenshots(folder: Path, page_id: str = PAGE) -> list[Path]:
    """Grab the main window (already set up: a QApplication and a Studiolo home) in each theme and size."""
    from PySide6.QtWidgets import QApplication

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager
    from desktop.settings import Settings
    from desktop.ui.main_window import MainWindow
    from desktop.ui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    settings = Settings.load()
    settings.first_run_done = True
    settings.save()
    plugins = PluginManager().load(third_party=False)
    engine = Engine(plugins)
    window = MainWindow(plugins, engine)
    saved = []
    try:
        window.show()
        if page_id in plugins.generators:
            window.show_page(page_id)
        folder.mkdir(parents=True, exist_ok=True)
        for theme in THEMES:
            apply_theme(app, theme)
            for width, height in SIZES:
                window.resize(width, height)
                app.processEvents()
                path = folder / f"theme-{theme}-{width}x{height}.png"
                if not window.grab().save(str(path)):
                    raise OSError(f"could not write {path}")
                saved.append(path)
    finally:
        window.close()
        engine.shutdown(timeout=10)
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
