"""Variations: "vary subtle / vary strong" on a result, for any generator whose params can say so.

The convention (API 0.2.1): a generator whose ``Params`` has a ``variation_seed: int | None`` field and a
``variation_strength: float`` field (0 to 1) mixes the starting noise of a second seed into its seed's, as
AUTOMATIC1111's variation seed does (0: the seed's output, 1: the variation seed's). The host then offers "Vary
subtle" and "Vary strong" on its outputs (in the gallery): the output's params and seed again, with a fresh random
variation seed and :data:`VARY_SUBTLE` or :data:`VARY_STRONG` as the strength (:func:`vary_params`). A panel
offers the same on its own results with the same two functions.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

__all__ = ["VARY_SUBTLE", "VARY_STRONG", "supports_variations", "vary_params"]

VARY_SUBTLE = 0.15
"""The variation strength of "Vary subtle": the same picture, with details changed."""
VARY_STRONG = 0.5
"""The variation strength of "Vary strong": the same composition at most, much changed."""
_MAX_VARIATION_SEED = 2**32 - 1  # a drawn variation seed: small enough to read, and A1111's range


def supports_variations(params_type: type) -> bool:
    """Whether ``params_type`` (a generator's ``Params``) has the ``variation_seed`` and ``variation_strength``
    fields of the convention above."""
    if not dataclasses.is_dataclass(params_type):
        return False
    names = {f.name for f in dataclasses.fields(params_type)}
    return {"variation_seed", "variation_strength"} <= names


def vary_params(params: Any, strength: float, variation_seed: int | None = None) -> Any:
    """``params`` (a ``Params`` instance of a type that :func:`supports_variations`) with ``variation_seed`` (a
    fresh random one when None) and ``variation_strength`` = ``strength``: run with the same seed, it is a
    variation of the output ``params`` made."""
    if variation_seed is None:
        variation_seed = secrets.randbelow(_MAX_VARIATION_SEED + 1)
    return dataclasses.replace(params, variation_seed=variation_seed, variation_strength=float(strength))
