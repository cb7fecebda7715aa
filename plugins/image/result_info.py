"""What the image panel says about one result: its title ("Result 3 · seed 42") and the params that made it (the
strip's tooltip), read from the output's metadata and the params and model of the job that made it.

The generator puts ``seed``, ``batch_index`` and ``mode`` in each ``ImageOutput.metadata``; the params and the
model are the panel's own record of the job it submitted (:class:`JobRecord`), unless the metadata carries
``params``/``model`` itself (the engine's saved metadata does). Imports Qt's core only (for translations).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication

PROMPT_CHARS = 80
"""A longer prompt is shortened to this many characters in a tooltip."""
SCHEDULER_NAMES = {"default": "Model default", "euler": "Euler", "euler_a": "Euler a", "dpmpp_2m": "DPM++ 2M",
                   "ddim": "DDIM", "unipc": "UniPC"}
MODE_NAMES = {"txt2img": "Text to image", "img2img": "Image to image", "inpaint": "Inpaint"}


def _tr(text: str) -> str:
    return QCoreApplication.translate("ResultInfo", text)


@dataclass(frozen=True)
class JobRecord:
    """What the panel submitted for one job: its params as JSON and the model reference it ran with."""

    params: Mapping[str, Any] = field(default_factory=dict)
    model: str | None = None


def shorten(text: str, limit: int = PROMPT_CHARS) -> str:
    """One line of at most ``limit`` characters, ending in "…" when cut."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _metadata(output: Any) -> Mapping[str, Any]:
    metadata = getattr(output, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def result_title(number: int, output: Any) -> str:
    """``Result N · seed S`` (``Partial result N …`` for a cancelled job's partial output); ``number`` from 1."""
    label = _tr("Partial result %1") if getattr(output, "partial", False) else _tr("Result %1")
    title = label.replace("%1", str(number))
    seed = _metadata(output).get("seed")
    return title + (" · " + _tr("seed %1").replace("%1", str(seed)) if seed is not None else "")


def result_details(number: int, output: Any, job: JobRecord | None = None) -> str:
    """The tooltip of a result: its title, then one line per param that made it (prompt shortened, negative
    prompt if any, steps, guidance, scheduler, size, mode and strength when not text-to-image, model)."""
    metadata = _metadata(output)
    params = metadata.get("params") if isinstance(metadata.get("params"), Mapping) else None
    params = params if params is not None else (job.params if job is not None else {})
    model = metadata.get("model") or (job.model if job is not None else None)
    lines = [result_title(number, output)]
    if getattr(output, "partial", False):
        lines[0] += " — " + _tr("partial: the job was cancelled")
    prompt = params.get("prompt")
    if prompt:
        lines.append(_tr("Prompt: %1").replace("%1", shorten(str(prompt))))
    if params.get("negative_prompt"):
        lines.append(_tr("Negative prompt: %1").replace("%1", shorten(str(params["negative_prompt"]))))
    if "steps" in params:
        lines.append(_tr("Steps: %1").replace("%1", str(params["steps"])))
    if "guidance_scale" in params:
        lines.append(_tr("Guidance: %1").replace("%1", f"{float(params['guidance_scale']):g}"))
    if "scheduler" in params:
        scheduler = str(params["scheduler"])
        lines.append(_tr("Scheduler: %1").replace("%1", _tr(SCHEDULER_NAMES.get(scheduler, scheduler))))
    image = getattr(output, "image", None)
    size = getattr(image, "size", None)
    if isinstance(size, tuple) and len(size) == 2:
        lines.append(_tr("Size: %1 × %2").replace("%1", str(size[0])).replace("%2", str(size[1])))
    elif "width" in params and "height" in params:
        lines.append(_tr("Size: %1 × %2").replace("%1", str(params["width"])).replace("%2", str(params["height"])))
    mode = str(metadata.get("mode") or params.get("mode") or "txt2img")
    if mode != "txt2img":
        text = _tr("Mode: %1").replace("%1", _tr(MODE_NAMES.get(mode, mode)))
        if "strength" in params:
            text += " · " + _tr("strength %1").replace("%1", f"{float(params['strength']):g}")
        lines.append(text)
    if model:
        lines.append(_tr("Model: %1").replace("%1", str(model)))
    return "\n".join(lines)
