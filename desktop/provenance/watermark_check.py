"""Look for the invisible watermarks generators put into their outputs: what ``studiolo verify`` reports.

The generator that made a file finds its own mark (:meth:`desktop.api.Generator.detect_watermark`): the one the
file's metadata names, or — when the metadata was stripped, which is when a watermark matters — every installed
generator of the file's kind that marks anything. A text mark needs the model's tokenizer: the model the metadata
names, found on this machine only (a local path, a built demo model, a downloaded hub model); nothing is downloaded
or built here.

Generators import what they need to look (torch) inside ``detect_watermark``: call this from a command-line process
or a worker, never from the GUI's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from desktop.api import Generator, ModelSource, StudioloError, WatermarkCheck

log = logging.getLogger(__name__)

KIND_BY_SUFFIX = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".bmp": "image",
                  ".tif": "image", ".tiff": "image", ".wav": "audio", ".flac": "audio", ".mp3": "audio",
                  ".ogg": "audio", ".txt": "text", ".md": "text"}


def check_watermarks(path: Path, generators: Iterable[Generator]) -> list[tuple[str, WatermarkCheck]]:
    """``(generator id, check)`` for each generator that could look for its mark in ``path``: the one its metadata
    names when installed, else every generator of the file's kind that implements ``detect_watermark``. A generator
    that fails is logged and left out (verify reports the rest)."""
    from desktop.library import metadata_for

    metadata = metadata_for(path)
    candidates = [g for g in generators if type(g).detect_watermark is not Generator.detect_watermark]
    named = metadata.get("generator") if isinstance(metadata, dict) else None
    chosen = [g for g in candidates if g.id == named]
    if not chosen:
        kind = (metadata or {}).get("kind") or KIND_BY_SUFFIX.get(path.suffix.lower())
        chosen = [g for g in candidates if g.kind == kind]
    found = []
    for generator in chosen:
        model_path = local_model_path(generator, (metadata or {}).get("model"))
        try:
            check = generator.detect_watermark(path, metadata, model_path)
        except Exception:  # a plugin's bug: said in the log, the other checks still reported
            log.warning("%s: detect_watermark failed on %s", generator.id, path, exc_info=True)
            continue
        if check is not None:
            found.append((generator.id, check))
    return found


def local_model_path(generator: Generator, ref: Any) -> Path | None:
    """The files of model ``ref`` on this machine, or None (no model, not here, or a reference that cannot be
    read). Never downloads, never builds."""
    if not isinstance(ref, str) or not ref:
        return None
    from desktop.models import hub
    from desktop.models.demo import demo_model_dir
    from desktop.models.resolver import parse_ref

    try:
        parsed = parse_ref(ref)
        if parsed.source == ModelSource.DEMO:
            found: Path | None = demo_model_dir(generator)
        elif parsed.source == ModelSource.HUB:
            found = (hub.cached_file(parsed.value, parsed.filename, parsed.revision) if parsed.filename
                     else hub.cached_snapshot(parsed.value, parsed.revision))
        else:
            found = parsed.path
    except (StudioloError, OSError, ValueError):
        return None
    return found if found is not None and Path(found).exists() else None
