"""Translations: Qt's own strings and Studiolo's catalogue for the system's language, when one exists."""

from __future__ import annotations

import logging

from PySide6.QtCore import QLibraryInfo, QLocale, QTranslator
from PySide6.QtWidgets import QApplication

from desktop.resources import resources_dir

log = logging.getLogger(__name__)


def install_translators(app: QApplication, locale: QLocale | None = None) -> list[QTranslator]:
    """Load ``studiolo_<locale>.qm`` from ``resources/translations`` and Qt's base translations; returns the
    translators installed (kept alive by the caller). A missing catalogue leaves English."""
    locale = locale or QLocale.system()
    installed = []
    qt = QTranslator(app)
    if qt.load(locale, "qtbase", "_", QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath)):
        app.installTranslator(qt)
        installed.append(qt)
    ours = QTranslator(app)
    folder = str(resources_dir() / "translations")
    if ours.load(locale, "studiolo", "_", folder):
        app.installTranslator(ours)
        installed.append(ours)
    else:
        log.info("no Studiolo translation for %s in %s", locale.name(), folder)
    return installed
