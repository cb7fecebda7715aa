"""The Settings dialog's Servers section: the OpenAI-compatible servers the remote generators run on (issue 23) —
another Studiolo's ``studiolo serve``, llama.cpp, vLLM, Ollama, LocalAI — each with a name, its API's URL, an optional
API key (kept in the owner-only settings file, as the Hugging Face token is; shown masked) and how many jobs of a
batch it takes at once. The dialog saves the values; :meth:`ServerSettings.check` says what is wrong first. Nothing
here contacts a server: the model choosers ask them, off the GUI thread, once the settings are saved."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

NAME, URL, KEY, CONCURRENCY = range(4)


class ServerSettings(QGroupBox):
    """Edits ``remote_servers``: one row a server."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("server_settings")
        self.setTitle(self.tr("Servers"))
        layout = QVBoxLayout(self)
        note = QLabel(self.tr("Remote generators run models on these OpenAI-compatible servers. With none, nothing "
                              "is contacted. Give each a short name, its API's URL (http://HOST:PORT/v1) and the "
                              "key it asks for, if any."), self)
        note.setWordWrap(True)
        layout.addWidget(note)
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("servers_table")
        self.table.setHorizontalHeaderLabels([self.tr("Name"), self.tr("URL"), self.tr("API key"),
                                              self.tr("At once")])
        self.table.horizontalHeader().setSectionResizeMode(URL, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setMinimumHeight(90)
        layout.addWidget(self.table)
        buttons = QHBoxLayout()
        self.add_button = QPushButton(self.tr("Add server"), self)
        self.add_button.setObjectName("add_server_button")
        self.add_button.clicked.connect(lambda: self.add_row())
        self.remove_button = QPushButton(self.tr("Remove"), self)
        self.remove_button.setObjectName("remove_server_button")
        self.remove_button.clicked.connect(self._remove_selected)
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

    def add_row(self, name: str = "", url: str = "", api_key: str | None = None, concurrency: int = 1) -> int:
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, NAME, QTableWidgetItem(name))
        self.table.setItem(row, URL, QTableWidgetItem(url or "http://"))
        key = QLineEdit(api_key or "", self.table)
        key.setEchoMode(QLineEdit.EchoMode.PasswordEchoOnEdit)
        key.setPlaceholderText(self.tr("none"))
        key.setAccessibleName(self.tr("API key of the server"))
        self.table.setCellWidget(row, KEY, key)
        spin = QSpinBox(self.table)
        spin.setRange(1, 64)
        spin.setValue(concurrency)
        spin.setToolTip(self.tr("How many jobs of a batch this server runs at once"))
        self.table.setCellWidget(row, CONCURRENCY, spin)
        self.table.setCurrentCell(row, NAME)
        return row

    def _remove_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)

    def fill(self, settings: Any) -> None:
        self.table.setRowCount(0)
        for server in settings.servers():
            self.add_row(server.name, server.url, server.api_key, server.concurrency)

    def _rows(self) -> list[dict[str, Any]]:
        rows = []
        for row in range(self.table.rowCount()):
            name, url = self.table.item(row, NAME), self.table.item(row, URL)
            key, spin = self.table.cellWidget(row, KEY), self.table.cellWidget(row, CONCURRENCY)
            rows.append({"name": name.text().strip() if name else "", "url": url.text().strip() if url else "",
                         "api_key": key.text().strip() or None if isinstance(key, QLineEdit) else None,
                         "concurrency": spin.value() if isinstance(spin, QSpinBox) else 1})
        return rows

    def values(self) -> dict[str, Any]:
        """``{"remote_servers": [...]}`` with each URL in its API-base form; call :meth:`check` first."""
        from desktop.api import StudioloError
        from desktop.remote.servers import normalise_url

        servers = []
        for entry in self._rows():
            try:
                entry["url"] = normalise_url(entry["url"])
            except StudioloError:  # check() reports it; the text is kept as typed
                pass
            servers.append(entry)
        return {"remote_servers": servers}

    def check(self) -> str | None:
        """Why the servers cannot be saved (a message to show), or None."""
        from desktop.api import RemoteServer, StudioloError
        from desktop.remote.servers import normalise_url

        names: set[str] = set()
        for entry in self._rows():
            try:
                RemoteServer.from_json({**entry, "url": normalise_url(entry["url"])})
            except StudioloError as exc:
                return str(exc)
            except ValueError as exc:
                return self.tr("A server cannot be used: %1.").replace("%1", str(exc))
            if entry["name"] in names:
                return self.tr("Two servers are named %1: give each its own name.").replace("%1", entry["name"])
            names.add(entry["name"])
        return None
