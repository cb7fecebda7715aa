"""Add-on models offered in a form's plain text field: the installed upscalers under ``upscaler`` and
``hires_upscaler``.

The params stay text (a path, an imported name, a hub file or ``demo``), so the field stays the form's line edit:
:class:`AddonChooser` gives it a completer and a ▾ button inside it listing the models of one add-on kind usable now
(``host.addon_models``: label shown, reference written), read again each time the field is shown or the list opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QObject, Qt, Slot
from PySide6.QtGui import QAction, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QCompleter, QLineEdit, QStyle, QToolButton

from desktop.api import StudioloError

__all__ = ["AddonChooser", "REFERENCE_ROLE"]

log = logging.getLogger(__name__)

REFERENCE_ROLE = Qt.ItemDataRole.UserRole + 1
"""The completer model's role holding each item's reference (what the field gets)."""


class AddonChooser(QObject):
    """Offers ``models()`` (``(label, reference)`` pairs) in ``edit``, a free text field: typing completes a
    reference (or a label), the ▾ button lists them all. ``fixed`` choices come first (``hires_upscaler``'s
    ``latent``)."""

    def __init__(self, edit: QLineEdit, models: Callable[[], Sequence[tuple[str, str]]], *,
                 fixed: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(edit)
        self.edit = edit
        self._models = models
        self._fixed = list(fixed)
        self.model = QStandardItemModel(self)
        self.completer = QCompleter(self.model, self)
        self.completer.setCompletionRole(REFERENCE_ROLE)  # matched and written: the reference; shown: the label
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        edit.setCompleter(self.completer)
        icon = edit.style().standardIcon(QStyle.StandardPixmap.SP_ArrowDown)
        self.list_action = QAction(icon, self.tr("Installed models"), edit)
        self.list_action.setObjectName(f"{edit.objectName() or 'addon'}_models")
        self.list_action.setToolTip(self.tr("Choose an installed model (imported, downloaded, or the demo)"))
        edit.addAction(self.list_action, QLineEdit.ActionPosition.TrailingPosition)
        for button in edit.findChildren(QToolButton):  # the button Qt made for it: named for assistive technology
            if button.defaultAction() is self.list_action:
                button.setObjectName(self.list_action.objectName())
                button.setAccessibleName(self.tr("Installed models"))
        self.list_action.triggered.connect(self.show_all)
        edit.installEventFilter(self)
        self.refresh()

    def choices(self) -> list[tuple[str, str]]:
        """``(label, reference)`` offered now."""
        return [(self.model.item(row).text(), self.model.item(row).data(REFERENCE_ROLE))
                for row in range(self.model.rowCount())]

    @Slot()
    def refresh(self) -> list[tuple[str, str]]:
        """Read the models again (a few small files each: on show and when the list is opened, not per key)."""
        try:
            found = list(self._models())
        except (StudioloError, OSError):
            log.warning("could not list the models for %s", self.edit.objectName(), exc_info=True)
            found = []
        refs = {ref for _label, ref in self._fixed}
        self.model.clear()
        for label, ref in self._fixed + [(label, ref) for label, ref in found if ref not in refs]:
            item = QStandardItem(label)
            item.setData(ref, REFERENCE_ROLE)
            item.setToolTip(ref)
            self.model.appendRow(item)
        return self.choices()

    @Slot()
    def show_all(self) -> None:
        """Open the list of every model (the field's text is not a filter here)."""
        self.refresh()
        self.edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self.completer.setCompletionPrefix("")
        self.completer.complete()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt)
        if watched is self.edit and event.type() == QEvent.Type.Show:
            self.refresh()
        return False


UPSCALER_FIELDS = {"upscaler": (), "hires_upscaler": (("Latent (resize the latents)", "latent"),)}
"""The fields offered the upscaler add-on kind, each with its fixed first choices."""


def offer_upscalers(forms: Sequence[object], host: object) -> dict[str, AddonChooser]:
    """An :class:`AddonChooser` of the host's upscalers (``host.addon_models("upscaler")``) on each
    :data:`UPSCALER_FIELDS` field that one of ``forms`` (:class:`~desktop.api.widgets.ParamsForm`) shows as a text
    field; by field name."""
    from plugins.image.addons import UPSCALER

    def models() -> list[tuple[str, str]]:
        addon_models = getattr(host, "addon_models", None)
        return list(addon_models(UPSCALER)) if addon_models is not None else []

    choosers: dict[str, AddonChooser] = {}
    for form in forms:
        names = form.field_names()  # type: ignore[attr-defined]
        for name, fixed in UPSCALER_FIELDS.items():
            if name in names and name not in choosers:
                edit = form.field_widget(name)  # type: ignore[attr-defined]
                if isinstance(edit, QLineEdit):
                    choosers[name] = AddonChooser(edit, models, fixed=fixed)
    return choosers
