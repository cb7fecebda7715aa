""""Use as input": which generators can start from a gallery item, and what the gallery asks the window to do.

A generator offers it through ``Generator.input_modes`` (mode → label) for outputs of its own ``kind``; the gallery
knows no generator by name: the window gives it :func:`input_targets` over the generators loaded, and opens the
chosen generator's page with the item's file as its input when the gallery emits an :class:`InputRequest`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["InputRequest", "InputTarget", "input_targets"]


class InputTarget(NamedTuple):
    """One "Use as input" choice: a generator, one of its input modes, and the label to show."""

    generator_id: str
    generator_name: str
    mode: str
    label: str


@dataclass(frozen=True)
class InputRequest:
    """Start ``generator_id`` in ``mode`` from the file of item ``item_id``; ``recipe`` is what made the item (a
    :class:`~desktop.library.Recipe`: its params are kept where they fit)."""

    generator_id: str
    mode: str
    path: Path
    item_id: int
    recipe: Any


def input_targets(generators: Iterable[Any], kind: str) -> list[InputTarget]:
    """The "Use as input" choices for an item of ``kind``: each generator of that kind with input modes, each of
    its modes, in the generators' order. A generator whose ``input_modes`` is not a mapping of strings offers
    none."""
    targets = []
    for generator in generators:
        modes = getattr(generator, "input_modes", None)
        if getattr(generator, "kind", None) != kind or not hasattr(modes, "items"):
            continue
        for mode, label in modes.items():
            if isinstance(mode, str) and isinstance(label, str) and mode:
                targets.append(InputTarget(generator.id, str(getattr(generator, "name", generator.id)), mode, label))
    return targets
