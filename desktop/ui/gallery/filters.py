"""``FilterBar``: what the gallery shows — a search box (debounced), kind, generator and model choices, a date
range (or any date), favourites only, the trash, and "derived from" an item (the chain of refinements: set from the
details pane, shown as a chip that clears it). :meth:`FilterBar.query` turns it into a library ``Query``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QDate, QDateTime, QTime, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from desktop.library.db import Query

__all__ = ["FilterBar", "SEARCH_DELAY_MS"]

SEARCH_DELAY_MS = 250
KNOWN_KINDS = ("image", "text", "audio")


class FilterBar(QWidget):
    """``changed`` is emitted when the filters change (the search only after :attr:`search_timer` runs out)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_filters")
        self.search = QLineEdit(self)
        self.search.setObjectName("gallery_search")
        self.search.setAccessibleName(self.tr("Search prompts and generated text"))
        self.search.setPlaceholderText(self.tr("Search prompts and text…"))
        self.search.setClearButtonEnabled(True)
        self.search_timer = QTimer(self)
        self.search_timer.setObjectName("gallery_search_timer")
        self.search_timer.setSingleShot(True)
        self.search_timer.setInterval(SEARCH_DELAY_MS)
        self.search_timer.timeout.connect(self.changed)
        self.search.textChanged.connect(lambda _text: self.search_timer.start())
        self.search.returnPressed.connect(self._search_now)

        self.kind = self._combo("gallery_kind", self.tr("Kind"), self.tr("All kinds"))
        self._kind_labels = {"image": self.tr("Images"), "text": self.tr("Texts"), "audio": self.tr("Audio")}
        for kind in KNOWN_KINDS:
            self.kind.addItem(self._kind_labels[kind], kind)
        self.generator = self._combo("gallery_generator", self.tr("Generator"), self.tr("All generators"))
        self.model = self._combo("gallery_model", self.tr("Model"), self.tr("All models"))

        self.any_date = QCheckBox(self.tr("Any date"), self)
        self.any_date.setObjectName("gallery_any_date")
        self.any_date.setAccessibleName(self.tr("Any date"))
        self.any_date.setChecked(True)
        today = QDate.currentDate()
        self.date_from = self._date("gallery_date_from", self.tr("From date"), today.addDays(-30))
        self.date_to = self._date("gallery_date_to", self.tr("To date"), today)
        self.any_date.toggled.connect(self._on_any_date)
        self._on_any_date(True, emit=False)

        self.favourites = self._toggle("gallery_favourites", self.tr("★ Favourites"),
                                       self.tr("Show only favourites"))
        self.trash = self._toggle("gallery_trash", self.tr("Trash"), self.tr("Show the trash"))
        self.derived_from: int | None = None
        self.derived_chip = QToolButton(self)
        self.derived_chip.setObjectName("gallery_derived_from")
        self.derived_chip.setToolTip(self.tr("Show every item again, not only those derived from this one"))
        self.derived_chip.clicked.connect(lambda: self.set_derived_from(None))
        self.derived_chip.hide()

        top = QHBoxLayout()
        top.addWidget(self.search, 1)
        for widget in (self.kind, self.generator, self.model):
            top.addWidget(widget)
        bottom = QHBoxLayout()
        bottom.addWidget(self.any_date)
        bottom.addWidget(self.date_from)
        bottom.addWidget(QLabel("–", self))
        bottom.addWidget(self.date_to)
        bottom.addStretch(1)
        bottom.addWidget(self.derived_chip)
        bottom.addWidget(self.favourites)
        bottom.addWidget(self.trash)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(bottom)

    def _combo(self, name: str, accessible: str, everything: str) -> QComboBox:
        combo = QComboBox(self)
        combo.setObjectName(name)
        combo.setAccessibleName(accessible)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(10)  # long model names must not widen the window; the list shows them
        combo.addItem(everything, None)
        combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        return combo

    def _date(self, name: str, accessible: str, date: QDate) -> QDateEdit:
        edit = QDateEdit(date, self)
        edit.setObjectName(name)
        edit.setAccessibleName(accessible)
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.dateChanged.connect(lambda _d: self.changed.emit() if not self.any_date.isChecked() else None)
        return edit

    def _toggle(self, name: str, text: str, tip: str) -> QToolButton:
        button = QToolButton(self)
        button.setObjectName(name)
        button.setText(text)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setCheckable(True)
        button.toggled.connect(lambda _checked: self.changed.emit())
        return button

    @Slot(bool)
    def _on_any_date(self, checked: bool, emit: bool = True) -> None:
        self.date_from.setEnabled(not checked)
        self.date_to.setEnabled(not checked)
        if emit:
            self.changed.emit()

    @Slot()
    def _search_now(self) -> None:
        if self.search_timer.isActive():
            self.search_timer.stop()
            self.changed.emit()

    # -- facets --------------------------------------------------------------------------------------------------

    def set_facets(self, facets: dict[str, list[str]]) -> None:
        """Offer the kinds, generators and models the library holds (keeping the current choices)."""
        kinds = [k for k in facets.get("kind", []) if k not in KNOWN_KINDS]
        self._fill(self.kind, [*KNOWN_KINDS, *kinds], self._kind_labels)
        self._fill(self.generator, facets.get("generator_id", []))
        self._fill(self.model, facets.get("model", []))

    @staticmethod
    def _fill(combo: QComboBox, values: list[str], labels: dict[str, str] | None = None) -> None:
        current = combo.currentData()
        wanted = list(dict.fromkeys(v for v in values if v))
        if current is not None and current not in wanted:
            wanted.append(current)  # a choice the library no longer holds stays until changed
        present = [combo.itemData(i) for i in range(1, combo.count())]
        if present == wanted:
            return
        combo.blockSignals(True)
        try:
            while combo.count() > 1:
                combo.removeItem(1)
            for value in wanted:
                combo.addItem((labels or {}).get(value, value), value)  # a plugin's own kind: its name as it is
            index = combo.findData(current) if current is not None else 0
            combo.setCurrentIndex(max(0, index))
        finally:
            combo.blockSignals(False)

    # -- the query -----------------------------------------------------------------------------------------------

    def query(self) -> Query:
        """The library query these filters describe."""
        from desktop.library.db import Query

        since = until = None
        if not self.any_date.isChecked():
            start, end = self.date_from.date(), self.date_to.date()
            if end < start:
                start, end = end, start
            since = float(QDateTime(start, QTime(0, 0)).toSecsSinceEpoch())
            until = float(QDateTime(end.addDays(1), QTime(0, 0)).toSecsSinceEpoch())
        kind = self.kind.currentData()
        return Query(
            kinds=(kind,) if kind else (),
            generator_id=self.generator.currentData(),
            model=self.model.currentData(),
            since=since,
            until=until,
            favourites_only=self.favourites.isChecked(),
            search=self.search.text().strip(),
            trashed=self.trash.isChecked(),
            derived_from=self.derived_from,
        )

    def set_derived_from(self, item_id: int | None, label: str = "") -> None:
        """Show only the items derived from ``item_id`` (None: no such filter); ``label`` names it on the chip."""
        self.derived_from = item_id
        text = label or self.tr("item %1").replace("%1", str(item_id))
        self.derived_chip.setText(self.tr("Derived from %1 ✕").replace("%1", text))
        self.derived_chip.setAccessibleName(self.derived_chip.text())
        self.derived_chip.setVisible(item_id is not None)
        self.changed.emit()

    def clear(self, *, trash: bool = False, derived_from: int | None = None) -> None:
        """Every filter off (``trash``: the trash instead of everything outside it; ``derived_from`` as in
        :meth:`set_derived_from`), then one ``changed``."""
        self.blockSignals(True)
        try:
            self.search_timer.stop()
            self.search.clear()
            self.search_timer.stop()
            for combo in (self.kind, self.generator, self.model):
                combo.setCurrentIndex(0)
            self.any_date.setChecked(True)
            self.favourites.setChecked(False)
            self.trash.setChecked(trash)
            self.set_derived_from(derived_from)
        finally:
            self.blockSignals(False)
        self.changed.emit()

    def set_date_range(self, start: QDate | None, end: QDate | None = None) -> None:
        """Show only items from ``start`` to ``end`` inclusive (None: any date)."""
        if start is None:
            self.any_date.setChecked(True)
            return
        self.blockSignals(True)
        try:
            self.date_from.setDate(start)
            self.date_to.setDate(end or start)
            self.any_date.setChecked(False)
        finally:
            self.blockSignals(False)
        self.changed.emit()
