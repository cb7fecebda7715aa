"""Control-image preprocessors run locally: a photo in, the map a ControlNet reads out.

canny is OpenCV's ``cv2.Canny``; depth is a transformers depth-estimation model (Depth Anything V2 Small by
default; :func:`plugins.image.control_map.estimate_depth`). OpenCV, torch and transformers are imported only
inside the functions the worker calls.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PREPROCESSORS", "canny", "preprocess"]

PREPROCESSORS = ("none", "canny", "depth")
"""Names a ControlNet unit's ``preprocess=`` takes: ``none`` uses the control image as it is."""


def canny(image: Any, low: int = 100, high: int = 200) -> Any:
    """The edges of ``image`` (a PIL image) found by OpenCV's Canny detector with hysteresis thresholds ``low``
    and ``high`` (0–255): white edges on black, as an RGB PIL image of the same size (what canny ControlNets read)."""
    import cv2
    import numpy as np
    from PIL import Image

    grey = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(grey, int(low), int(high))
    return Image.fromarray(edges).convert("RGB")


def preprocess(name: str, image: Any, *, low: int = 100, high: int = 200, annotator: str = "") -> Any:
    """``image`` run through the preprocessor ``name`` (one of :data:`PREPROCESSORS`); ``annotator``: depth's
    model (a folder, ``demo`` or a hub id; empty: Depth Anything V2 Small)."""
    if name == "canny":
        return canny(image, low, high)
    if name == "depth":
        from plugins.image.control_map import estimate_depth

        return estimate_depth(image, annotator)
    return image.convert("RGB")
