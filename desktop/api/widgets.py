"""Qt helpers for custom panels. Import this module explicitly (``from desktop.api.widgets import …``) from
``create_panel`` code: unlike ``desktop.api`` itself, it imports Qt.

* :class:`ParamsForm` — the form the window builds from ``Params`` (validated as you type), for all of a panel's
  params or some of them (``fields=``);
* :class:`JobFollower` — follows the jobs a panel submitted through its host's signals;
* :class:`QtPanelHost` — the ``PanelHost`` base where the host's signals are declared;
* :class:`FileDropMixin` — accept files dropped on a panel;
* :func:`playback_unavailable_reason` — None where audio can play in the app (QtMultimedia), else one line naming
  what to install (shown instead of an ``ImportError`` text; the gallery uses it too).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent

from desktop.api.job_follower import JobFollower
from desktop.api.params_form import ParamsForm
from desktop.api.playback import playback_unavailable_reason
from desktop.api.qt_panel_host import QtPanelHost

__all__ = ["FileDropMixin", "JobFollower", "ParamsForm", "QtPanelHost", "playback_unavailable_reason"]


class FileDropMixin:
    """Accept a local file dropped on the widget: list it before ``QWidget`` in the bases, implement
    ``open_file(path)``, and call ``setAcceptDrops(True)``. ``accepts_file(path)`` decides which files are taken
    (default: any existing file)."""

    def accepts_file(self, path: Path) -> bool:
        return path.is_file()

    def open_file(self, path: Path) -> object:
        raise NotImplementedError

    def dropped_file(self, mime: QMimeData) -> Path | None:
        """The first local file in ``mime`` that :meth:`accepts_file` takes."""
        for url in mime.urls() if mime.hasUrls() else ():
            if url.isLocalFile() and self.accepts_file(Path(url.toLocalFile())):
                return Path(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: QDragEnterEvent | QDragMoveEvent) -> None:  # noqa: N802 (Qt)
        if self.dropped_file(event.mimeData()) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (Qt)
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt)
        path = self.dropped_file(event.mimeData())
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        self.open_file(path)
