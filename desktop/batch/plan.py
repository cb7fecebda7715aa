"""A batch's plan: every job it runs, decided before the first one starts.

:func:`make_plan` turns the input rows (:mod:`desktop.batch.inputs`) into items — each row × its variations — with
their validated params and their seed, so that a batch can be resumed, re-run or described exactly from its plan
(:meth:`BatchPlan.to_json`, kept in the batch's journal). Seeds:

* ``fixed`` — every row uses the same seeds: the given seed (its variations the next ones: ``seed + variation``),
  so that prompts can be compared picture for picture;
* ``sequential`` — item ``i`` gets ``seed + i``;
* ``random`` — every item a seed of its own, recorded in the plan (from the given seed when there is one, so the
  same command plans the same seeds; otherwise drawn from the system's random source).

A row's own seed (a ``seed`` column) wins over the policy: its variations get ``seed + variation``.

Pictures (a folder of inputs, augmentation) become image-to-image jobs through the generator's own
:meth:`~desktop.api.Generator.params_for_input`; the strength can be spread over a row's variations, and each
input can first be mirrored and/or cropped (written into the batch's work folder; the item still names the
original file). Nothing here imports Qt or torch; Pillow only when a picture is flipped or cropped.
"""

from __future__ import annotations

import io
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from desktop.api.errors import ParamError, StudioloError
from desktop.api.files import atomic_write_bytes
from desktop.api.params import from_json, prompt_field, schema, to_json
from desktop.batch.inputs import IMAGE_SUFFIXES, BatchInputError, BatchRow
from desktop.engine.jobs import MAX_SEED

__all__ = ["BatchItem", "BatchPlan", "make_plan", "SEED_MODES", "MAX_BATCH_ITEMS", "MAX_VARIATIONS"]

SEED_MODES = ("fixed", "sequential", "random")
MAX_BATCH_ITEMS = 1_000_000
"""The most items one batch may have."""
MAX_VARIATIONS = 10_000
"""The most variations per row."""
_DRAWN_SEED_BOUND = 2**32  # drawn seeds: as the engine draws them (desktop.engine.jobs.choose_seed)
_INPUT_MODE = "img2img"


@dataclass(frozen=True)
class BatchItem:
    """One job of a batch. ``index`` (0-based, stable) names its files (``f"{index:06d}"``); ``row`` is the input
    row it came from; ``params`` the full validated params as JSON; ``source`` the ORIGINAL input file, if any
    (its flipped/cropped copy, when there is one, is what ``params`` starts from); ``variation`` its number within
    its row."""

    index: int
    row: int
    params: dict[str, Any]
    seed: int
    model: str | None
    source: str | None = None
    variation: int = 0


@dataclass
class BatchPlan:
    """Every item of a batch and how they were made. ``kind`` is the generator's (image/text/audio);
    ``base_seed`` the seed the policy started from (-1: none was given, for ``random`` seeds from the system's
    random source); ``source`` describes the inputs and options (for the dataset card and to run it again)."""

    generator_id: str
    generator_version: str
    kind: str
    model: str | None
    items: list[BatchItem]
    seed_mode: str
    base_seed: int
    source: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "generator_id": self.generator_id,
            "generator_version": self.generator_version,
            "kind": self.kind,
            "model": self.model,
            "seed_mode": self.seed_mode,
            "base_seed": self.base_seed,
            "source": self.source,
            "items": [asdict(item) for item in self.items],
        }

    @classmethod
    def from_json(cls, data: Any) -> BatchPlan:
        """The plan :meth:`to_json` wrote; a :class:`~desktop.api.StudioloError` when ``data`` is not one."""
        try:
            if not isinstance(data, dict):
                raise TypeError("not an object")
            items = []
            for number, raw in enumerate(data["items"]):
                if not isinstance(raw, dict) or not isinstance(raw["params"], dict):
                    raise TypeError(f"item {number} is not an object")
                item = BatchItem(index=_int(raw["index"]), row=_int(raw["row"]), params=raw["params"],
                                 seed=_int(raw["seed"]), model=_opt_str(raw.get("model")),
                                 source=_opt_str(raw.get("source")), variation=_int(raw.get("variation", 0)))
                if item.index != number:
                    raise ValueError(f"item {number} has index {item.index}")
                items.append(item)
            seed_mode = data["seed_mode"]
            if seed_mode not in SEED_MODES:
                raise ValueError(f"unknown seed mode {seed_mode!r}")
            source = data.get("source", {})
            if not isinstance(source, dict):
                raise TypeError("source is not an object")
            return cls(generator_id=_str(data["generator_id"]), generator_version=_str(data["generator_version"]),
                       kind=_str(data["kind"]), model=_opt_str(data.get("model")), items=items,
                       seed_mode=seed_mode, base_seed=_int(data["base_seed"]), source=source)
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            raise StudioloError(f"The batch plan is damaged ({reason}).",
                                hint="Start the batch again in an empty folder (or with --force).") from None


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{value!r} is not a whole number")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not text")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def make_plan(generator: Any, rows: list[BatchRow], *, base_params: dict[str, Any], model: str | None,
              seed_mode: str, seed: int | None, variations: int = 1, strength: tuple[float, float] | None = None,
              flip: bool = False, crop: float = 0.0, work_dir: Path | None = None,
              source: dict[str, Any]) -> BatchPlan:
    """The plan of a batch of ``generator`` jobs: each row × ``variations`` items, in row order.

    ``base_params``: JSON values every item starts from (a row's values and prompt replace them). ``seed``: the
    policy's seed (None or -1: drawn). ``strength``: (low, high), spread linearly over each row's variations (one
    variation: the middle). ``flip`` mirrors each input picture left to right; ``crop`` (0 to 0.5) keeps
    ``1 - crop`` of its width and height, at a place drawn from the item's seed; both write the changed picture
    into ``work_dir``. Every item's params are validated: a value that is not allowed is a
    :class:`~desktop.batch.inputs.BatchInputError` naming the row.
    """
    if seed_mode not in SEED_MODES:
        raise ParamError("seed_mode", seed_mode, "must be one of " + ", ".join(SEED_MODES))
    if not isinstance(variations, int) or isinstance(variations, bool) or not 1 <= variations <= MAX_VARIATIONS:
        raise ParamError("variations", variations, f"must be a whole number from 1 to {MAX_VARIATIONS}")
    if seed is not None and seed != -1 and (not isinstance(seed, int) or isinstance(seed, bool)
                                             or not 0 <= seed <= MAX_SEED):
        raise ParamError("seed", seed, f"must be a whole number from 0 to {MAX_SEED}, or -1 for a random seed")
    total = len(rows) * variations
    if total > MAX_BATCH_ITEMS:
        raise ParamError("count", total, f"a batch has at most {MAX_BATCH_ITEMS} items")
    if not 0.0 <= crop < 0.5:
        raise ParamError("crop", crop, "must be from 0 to 0.5 (the part of each side cut off)")
    if (flip or crop) and work_dir is None:
        raise ValueError("flipped or cropped inputs need a work_dir")
    params_type = generator.Params
    if strength is not None:
        low, high = strength
        if "strength" not in {f.name for f in schema(params_type)}:
            raise ParamError("strength", strength, f"{generator.name} has no strength")
        if not (0.0 <= low <= 1.0 and 0.0 <= high <= 1.0):
            raise ParamError("strength", strength, "both ends must be between 0 and 1")
    given = None if seed is None or seed == -1 else seed
    base = given if given is not None else random.SystemRandom().randrange(_DRAWN_SEED_BOUND)
    draw = random.Random(given) if given is not None else random.SystemRandom()
    if seed_mode == "sequential" and base + total - 1 > MAX_SEED:
        raise ParamError("seed", base, f"the last item's seed would pass {MAX_SEED}")
    prompt_name = prompt_field(params_type)
    defaults = to_json(from_json(params_type, base_params, strict=True))  # a ParamError names the field

    items: list[BatchItem] = []
    for row in rows:
        values = {**defaults, **row.params}
        if row.prompt is not None and prompt_name is not None:
            values[prompt_name] = row.prompt
        is_picture = row.source is not None and row.source.suffix.lower() in IMAGE_SUFFIXES
        if is_picture and _INPUT_MODE not in getattr(generator, "input_modes", {}):
            raise BatchInputError(row.number, None, f"{generator.name} cannot start from a picture.",
                                  hint="Choose a generator with image-to-image.")
        for variation in range(variations):
            index = len(items)
            if row.seed is not None:
                item_seed = (row.seed + variation) % (MAX_SEED + 1)
            elif seed_mode == "fixed":
                item_seed = (base + variation) % (MAX_SEED + 1)
            elif seed_mode == "sequential":
                item_seed = base + index
            else:
                item_seed = draw.randrange(_DRAWN_SEED_BOUND)
            item_values = dict(values)
            if strength is not None:
                low, high = strength
                item_values["strength"] = (low + high) / 2 if variations == 1 else (
                    low + (high - low) * variation / (variations - 1))
            params = _item_params(generator, row, item_values, is_picture, index, item_seed, flip, crop, work_dir)
            items.append(BatchItem(index=index, row=row.number, params=params, seed=item_seed,
                                   model=row.model or model,
                                   source=str(row.source.resolve()) if row.source is not None else None,
                                   variation=variation))
    recorded = -1 if given is None and seed_mode == "random" else base
    return BatchPlan(generator_id=generator.id, generator_version=str(generator.version), kind=generator.kind,
                     model=model, items=items, seed_mode=seed_mode, base_seed=recorded, source=source)


def _item_params(generator: Any, row: BatchRow, values: dict[str, Any], is_picture: bool, index: int, seed: int,
                 flip: bool, crop: float, work_dir: Path | None) -> dict[str, Any]:
    """One item's validated params as JSON; a :class:`BatchInputError` naming the row when one is not allowed."""
    try:
        params = from_json(generator.Params, values, strict=True)
        if is_picture:
            assert row.source is not None
            start = row.source.resolve()
            if flip or crop:
                assert work_dir is not None
                start = _transformed(row.source, Path(work_dir), index, seed, flip, crop)
            params = from_json(generator.Params, to_json(generator.params_for_input(params, start, _INPUT_MODE)),
                               strict=True)
    except ParamError as exc:
        raise BatchInputError(row.number, exc.field, exc.message, hint="Correct the row, or the batch's own "
                              "parameters.") from None
    return to_json(params)


def _transformed(path: Path, work_dir: Path, index: int, seed: int, flip: bool, crop: float) -> Path:
    """The input picture mirrored and/or cropped, written as ``work_dir / f"{index:06d}.png"``."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as opened:
            image = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise ParamError("init_image", str(path), f"not a picture that can be read ({exc})") from None
    if flip:
        image = ImageOps.mirror(image)
    if crop:
        width, height = image.size
        keep_w, keep_h = max(1, round(width * (1 - crop))), max(1, round(height * (1 - crop)))
        place = random.Random(seed)
        left, top = place.randint(0, width - keep_w), place.randint(0, height - keep_h)
        image = image.crop((left, top, left + keep_w, top + keep_h))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / f"{index:06d}.png"
    atomic_write_bytes(out, buffer.getvalue())
    return out.resolve()
