"""Light/dark following the colour scheme, and translations loaded from resources/translations."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLocale, Qt
from PySide6.QtGui import QPalette

from desktop.resources import resources_dir
from desktop.ui.i18n import install_translators
from desktop.ui.theme import apply_theme


def test_the_palette_follows_the_colour_scheme(qapp):
    # The offscreen platform has no colour scheme of its own: play the system's part by emitting its signal.
    apply_theme(qapp)
    try:
        qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Dark)
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() < 80
        qapp.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
        assert qapp.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        qapp.setStyleSheet("")
        qapp.setPalette(qapp.style().standardPalette())


def test_the_empty_catalogue_is_shipped_and_a_compiled_one_is_loaded(qapp, tmp_path, monkeypatch):
    catalogue = resources_dir() / "translations" / "studiolo.ts"
    assert catalogue.is_file() and "<TS" in catalogue.read_text()
    # A German catalogue translating one string, compiled as a translator would, is picked up for de_DE.
    folder = tmp_path / "translations"
    folder.mkdir()
    (folder / "studiolo_de.ts").write_text(
        '<?xml version="1.0" encoding="utf-8"?><!DOCTYPE TS><TS version="2.1" language="de">'
        "<context><name>MainWindow</name><message><source>Studiolo</source>"
        "<translation>Studiolo (deutsch)</translation></message></context></TS>")
    lrelease = shutil.which("pyside6-lrelease", path=str(Path(sys.executable).parent))
    subprocess.run([lrelease, str(folder / "studiolo_de.ts"), "-qm", str(folder / "studiolo_de.qm")], check=True,
                   capture_output=True)
    monkeypatch.setenv("STUDIOLO_RESOURCES", str(tmp_path))
    translators = install_translators(qapp, QLocale("de_DE"))
    try:
        assert QCoreApplication.translate("MainWindow", "Studiolo") == "Studiolo (deutsch)"
    finally:
        for translator in translators:
            qapp.removeTranslator(translator)
    assert QCoreApplication.translate("MainWindow", "Studiolo") == "Studiolo"
