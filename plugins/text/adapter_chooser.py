"""The text panel's adapter chooser (``TextParams.adapter``): "No adapter", then the LoRA adapters usable now
(``host.addon_models("adapter")``: label shown, reference written into the param), read again each time the list
is opened. A reference that is not listed (a path from reused params, an adapter since removed) is shown as it is,
so the value always round-trips through the params."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QWidget

from desktop.api import StudioloError

__all__ = ["AdapterChooser"]

log = logging.getLogger(__name__)


class AdapterChooser(QComboBox):
    """A combo box of ``(label, reference)`` choices; :meth:`value` is the chosen reference ("" for none)."""

    def __init__(self, host: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.host = host
        self.setObjectName("adapter")
        self.setAccessibleName(self.tr("Adapter"))
        self.setToolTip(self.tr("A LoRA adapter trained on some writing (Train › LoRA from your writing): the model "
                                "then writes more like it. No adapter: the model as it is."))
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.refresh()

    def models(self) -> list[tuple[str, str]]:
        addon_models = getattr(self.host, "addon_models", None)
        if addon_models is None:
            return []
        try:
            return list(addon_models("adapter"))
        except (StudioloError, OSError):
            log.warning("could not list the text adapters", exc_info=True)
            return []

    def refresh(self) -> None:
        """Read the adapters again, keeping the chosen one."""
        current = self.value()
        self.blockSignals(True)
        try:
            self.clear()
            self.addItem(self.tr("No adapter"), "")
            for label, ref in self.models():
                self.addItem(label, ref)
                self.setItemData(self.count() - 1, ref, Qt.ItemDataRole.ToolTipRole)
            self.set_value(current)
        finally:
            self.blockSignals(False)

    def value(self) -> str:
        data = self.currentData()
        return data if isinstance(data, str) else ""

    def set_value(self, ref: str) -> None:
        index = self.findData(ref or "")
        if index < 0:
            self.addItem(ref, ref)
            index = self.count() - 1
        self.setCurrentIndex(index)

    def showPopup(self) -> None:  # noqa: N802 (Qt)
        self.refresh()
        super().showPopup()
