"""The image panel's "Vary subtle / Vary strong": a result's params and seed again, with a fresh random variation
seed at :data:`~desktop.api.VARY_SUBTLE` or :data:`~desktop.api.VARY_STRONG` strength (one image).

The toolbar's two actions vary the selected result; the strip's context menu varies the one clicked. The varied
params are what made the result (its saved metadata, or the panel's record of the job), with batch size and count
1 and the result's own seed (a batch image's), so the variation is of that very picture. Variations are
text-to-image only: other results are refused with a message. Varying a variation replaces its variation seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from desktop.api import VARY_STRONG, VARY_SUBTLE, ParamError, StudioloError, from_json, to_json, vary_params
from plugins.image.result_info import JobRecord
from plugins.image.workspace import add_to_toolbar, make_action

__all__ = ["install_vary_actions", "vary_result"]


def install_vary_actions(panel: Any) -> None:
    """Add "Vary subtle" and "Vary strong" to the panel's toolbar (enabled while a result is selected) and follow
    the strip's context menu's."""
    tr = panel.tr
    panel.vary_actions = {}
    for name, text, tip, strength in (
            ("vary_subtle", tr("Vary subtle"), tr("Make a slight variation of the selected result"), VARY_SUBTLE),
            ("vary_strong", tr("Vary strong"), tr("Make a strong variation of the selected result"), VARY_STRONG)):
        action = make_action(panel, name, text, tip)
        action.setEnabled(False)
        action.triggered.connect(lambda _checked=False, s=strength: vary_result(panel, panel.strip.currentRow(), s))
        add_to_toolbar(panel.toolbar, action, text)
        panel.vary_actions[name] = action

    def update(row: int) -> None:
        for action in panel.vary_actions.values():
            action.setEnabled(panel.strip.output(row) is not None)

    panel.viewer.current_changed.connect(update)
    panel.strip.vary_requested.connect(lambda row, strength: vary_result(panel, row, strength))


def vary_result(panel: Any, row: int, strength: float) -> str | None:
    """Submit a variation of the result in ``row`` at ``strength``; its job id, or None (the reason shown)."""
    output = panel.strip.output(row)
    if output is None:
        return None
    job = panel.strip.job(row)
    metadata = output.metadata if isinstance(getattr(output, "metadata", None), Mapping) else {}
    recorded = metadata.get("params") if isinstance(metadata.get("params"), Mapping) else None
    recorded = recorded if recorded is not None else (job.params if job is not None else None)
    if not recorded:
        panel._show_error(panel.tr("How this result was made is not known: it cannot be varied."))
        return None
    model = metadata.get("model") or (job.model if job is not None else None)
    seed = metadata.get("seed")
    try:
        params = from_json(panel.params_type, dict(recorded))
        if params.mode != "txt2img":
            raise ParamError("variation_seed", None, panel.tr("variations work in text to image only"))
        params = vary_params(replace(params, batch_size=1, batch_count=1), strength)
        job_id = panel.follower.submit(params, model=model, seed=seed if isinstance(seed, int) else None)
    except StudioloError as exc:
        panel._show_error(str(exc))
        return None
    panel._jobs[job_id] = JobRecord(to_json(params), model)
    panel._show_status(panel.tr("Varying result %1 (variation seed %2, strength %3)…").replace("%1", str(row + 1))
                       .replace("%2", str(params.variation_seed)).replace("%3", f"{strength:g}"))
    panel.progress.setRange(0, 0)
    return job_id
