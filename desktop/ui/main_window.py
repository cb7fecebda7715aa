"""The main window (a first version: the generators the plugins provide, grouped by kind)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QMainWindow, QStackedWidget, QTreeWidget, QTreeWidgetItem

from desktop.plugins import PluginManager, Status


class MainWindow(QMainWindow):
    def __init__(self, manager: PluginManager) -> None:
        super().__init__()
        self.manager = manager
        self.setWindowTitle(self.tr("Studiolo"))
        self.resize(960, 640)
        self.pages = QStackedWidget(self)
        self.generator_tree = QTreeWidget(self)
        self.generator_tree.setHeaderLabels([self.tr("Generator"), self.tr("Plugin")])
        self.empty_page = QLabel(self)
        self.empty_page.setWordWrap(True)
        self.empty_page.setText(self.tr(
            "<h2>No generators installed</h2>"
            "<p>Studiolo runs generators that plugins provide. Install a plugin package "
            "(<code>pip install studiolo-…</code>) or enable a disabled one with "
            "<code>studiolo plugins enable NAME</code>, then start Studiolo again.</p>"
            "<p>Writing your own takes one module: see <i>docs/plugins.md</i>.</p>"))
        self.pages.addWidget(self.generator_tree)
        self.pages.addWidget(self.empty_page)
        self.setCentralWidget(self.pages)
        self._fill()

    def _fill(self) -> None:
        by_kind: dict[str, QTreeWidgetItem] = {}
        for gid, generator in sorted(self.manager.generators.items()):
            parent = by_kind.get(generator.kind)
            if parent is None:
                parent = by_kind[generator.kind] = QTreeWidgetItem(self.generator_tree, [generator.kind.title()])
                parent.setExpanded(True)
            QTreeWidgetItem(parent, [generator.name, self.manager.plugin_of(gid).name])
        self.pages.setCurrentWidget(self.generator_tree if by_kind else self.empty_page)
        failed = [r.name for r in self.manager.plugins.values() if r.status == Status.FAILED]
        if failed:
            self.statusBar().showMessage(self.tr("Plugins that failed to load: %s") % ", ".join(failed))
