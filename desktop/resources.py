"""Where Studiolo's resources (icons, styles, presets, translations) are: ``resources/`` beside the packages in a
source or editable install, or the folder named by ``STUDIOLO_RESOURCES``."""

from __future__ import annotations

import os
from pathlib import Path


def resources_dir() -> Path:
    override = os.environ.get("STUDIOLO_RESOURCES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "resources"
