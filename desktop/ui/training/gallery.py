"""The gallery's "Train a LoRA on these…" (issue 22): the selected pictures or texts become the data of a training
in the Training window of a generator that trains on them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.ui.training.form import data_field

__all__ = ["TRAINABLE_KINDS", "TrainRequest", "trainer_for"]

TRAINABLE_KINDS = ("image", "text")
"""The kinds of gallery items a training can read."""


@dataclass(frozen=True)
class TrainRequest:
    """What the gallery asks: train on ``paths`` (items of ``kind``), made by ``generator_ids`` (most first)."""

    kind: str
    paths: list[Path]
    generator_ids: list[str] = field(default_factory=list)


def _kind_with_data(generator: Any) -> str | None:
    for spec in getattr(generator, "training_kinds", ()) or ():
        if data_field(spec.Params) is not None:
            return spec.id
    return None


def trainer_for(generators: Iterable[Any], request: TrainRequest) -> tuple[str, str] | None:
    """``(generator_id, training kind)`` to train on the request's items: the generator that made them when it
    trains on files, else the first (by id) of their kind that does; None when no enabled generator does."""
    generators = sorted(generators, key=lambda g: g.id)
    by_id = {g.id: g for g in generators}
    for generator_id in request.generator_ids:
        generator = by_id.get(generator_id)
        kind = _kind_with_data(generator) if generator is not None else None
        if kind is not None and generator is not None and generator.kind == request.kind:
            return generator.id, kind
    for generator in generators:
        kind = _kind_with_data(generator)
        if kind is not None and generator.kind == request.kind:
            return generator.id, kind
    return None
