"""Synthetic but real library items for tests and benchmarks: ``fill_library(library, n, root=...)``.

Each item is a real file, written the way the output store writes them — small PNGs (built with zlib/struct, the
metadata in a ``studiolo`` iTXt chunk), UTF-8 ``.txt`` files and tiny 16-bit WAVs (``wave``), the last two with a
JSON sidecar — in ``root/YYYY-MM-DD/<generator_id>/`` folders, and indexed in batches with ``Library.add_many``.
Kinds, generators, models, prompts and creation times vary, deterministically for a given ``seed``. No Qt, no
Pillow, no numpy: 10,000 items take a few seconds.
"""

from __future__ import annotations

import io
import json
import random
import struct
import time
import wave
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from desktop.library import Library, NewItem

__all__ = ["GENERATORS", "BASE_TIME", "fill_library", "png_bytes", "wav_bytes"]

BASE_TIME = 1_700_000_000.0
"""Items are made within a year after this (unix time)."""

GENERATORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # generator id: (kind, suffix, models)
    "image.diffusers": ("image", ".png", ("stabilityai/sd-turbo", "runwayml/stable-diffusion-v1-5", "demo")),
    "text.transformers": ("text", ".txt", ("Qwen/Qwen2.5-0.5B-Instruct", "gpt2", "demo")),
    "audio.speech": ("audio", ".wav", ("facebook/mms-tts-eng", "demo")),
    "audio.music": ("audio", ".wav", ("facebook/musicgen-small", "demo")),
}
_WEIGHTS = (4, 2, 1, 1)  # half images, a quarter texts, the rest audio

_SUBJECTS = ("fox", "lighthouse", "cat", "robot", "castle", "dragon", "teapot", "orchard", "violinist", "glacier",
             "café", "cerisier", "東京タワー", "owl", "submarine", "astronaut", "market", "waterfall")
_ADJECTIVES = ("misty", "golden", "tiny", "ancient", "neon", "quiet", "stormy", "velvet", "crystal", "rusty")
_STYLES = ("watercolour", "oil painting", "pixel art", "photograph", "ink sketch", "isometric render")
_PLACES = ("in a forest", "at dawn", "under the sea", "on the moon", "in the rain", "by the harbour")
_WORDS = ("the", "river", "remembered", "every", "stone", "and", "lantern", "while", "night", "folded", "its",
          "wings", "over", "sleeping", "town", "softly", "music", "drifted", "through", "open", "windows")
_GENRES = ("lo-fi beat", "string quartet", "synthwave", "folk ballad", "jazz trio", "ambient drone")

_BATCH = 1000


def fill_library(library: Library, n: int, *, root: Path, seed: int = 0) -> list[int]:
    """Write ``n`` items' files under ``root`` and index them in ``library``; returns their ids, in order.

    The same ``seed`` gives the same items (calling twice with one seed and root rewrites the same files and
    indexes them again).
    """
    rng = random.Random(seed)
    root = Path(root)
    made_folders: set[Path] = set()
    ids: list[int] = []
    batch: list[NewItem] = []
    generator_ids = list(GENERATORS)
    for index in range(n):
        generator_id = rng.choices(generator_ids, weights=_WEIGHTS)[0]
        item = _make_item(rng, index, seed, generator_id, root, made_folders)
        batch.append(item)
        if len(batch) >= _BATCH:
            ids.extend(library.add_many(batch).result(timeout=120))
            batch = []
    if batch:
        ids.extend(library.add_many(batch).result(timeout=120))
    return ids


def _make_item(rng: random.Random, index: int, seed: int, generator_id: str, root: Path,
               made_folders: set[Path]) -> NewItem:
    kind, suffix, models = GENERATORS[generator_id]
    model = rng.choice(models)
    created = BASE_TIME + rng.uniform(0, 365 * 86400)
    item_seed = rng.randrange(2**31)
    job_id = f"s{seed}-{index:06d}"
    text: str | None = None
    if generator_id == "image.diffusers":
        prompt = f"a {rng.choice(_ADJECTIVES)} {rng.choice(_SUBJECTS)} {rng.choice(_PLACES)}, {rng.choice(_STYLES)}"
        params: dict[str, Any] = {"prompt": prompt, "negative_prompt": "blurry", "steps": rng.choice((1, 4, 20, 30)),
                                  "guidance_scale": rng.choice((0.0, 5.0, 7.5)), "width": 512, "height": 512}
    elif generator_id == "text.transformers":
        prompt = f"Write about a {rng.choice(_ADJECTIVES)} {rng.choice(_SUBJECTS)}"
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(8, 60))).capitalize() + "."
        params = {"prompt": prompt, "max_new_tokens": rng.choice((64, 128, 256)), "temperature": 0.8}
    elif generator_id == "audio.speech":
        prompt = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(3, 12))).capitalize() + "."
        params = {"text": prompt, "speaking_rate": 1.0}
    else:
        prompt = f"{rng.choice(_ADJECTIVES)} {rng.choice(_GENRES)} about a {rng.choice(_SUBJECTS)}"
        params = {"prompt": prompt, "duration": rng.choice((5, 10, 30))}
    metadata = {
        "studiolo_version": "0.1.0", "generator": generator_id, "generator_version": "1.0", "kind": kind,
        "model": model, "params": params, "prompt": prompt, "seed": item_seed, "device": "cpu", "job_id": job_id,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created)), "timings": {},
        "partial": False, "output": {},
    }
    stamp = time.localtime(created)
    folder = root / time.strftime("%Y-%m-%d", stamp) / generator_id
    if folder not in made_folders:
        folder.mkdir(parents=True, exist_ok=True)
        made_folders.add(folder)
    path = folder / f"{time.strftime('%H%M%S', stamp)}-{job_id}-0{suffix}"
    meta_json = json.dumps(metadata, ensure_ascii=False)
    if kind == "image":
        path.write_bytes(png_bytes(rng.randrange(len(_COLOURS)), meta_json))
    else:
        path.with_name(path.name + ".json").write_text(meta_json + "\n", encoding="utf-8")
        if kind == "text":
            path.write_text(text or "", encoding="utf-8")
        else:
            path.write_bytes(wav_bytes(rng.randrange(len(_TONES))))
    return NewItem(generator_id=generator_id, kind=kind, path=path, metadata=metadata, job_id=job_id,
                   generator_version="1.0", model=model, prompt=prompt, created=created, seed=item_seed, text=text)


# -- files ---------------------------------------------------------------------------------------------------

_COLOURS: Sequence[tuple[int, int, int]] = tuple(
    (r, g, b) for r in (0, 128, 255) for g in (0, 128, 255) for b in (64, 192))
_SIZE = 16
_IDATS: dict[int, bytes] = {}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(colour: int, metadata_json: str | None = None) -> bytes:
    """A 16×16 RGB PNG of one of a few gradients (``colour`` picks it), with ``metadata_json`` in an iTXt chunk
    named ``studiolo`` when given — what the host's image encoder writes, readable by ``read_png_metadata``."""
    idat = _IDATS.get(colour)
    if idat is None:
        r, g, b = _COLOURS[colour % len(_COLOURS)]
        rows = b"".join(b"\x00" + b"".join(bytes((r, g, (b + 8 * x + 4 * y) % 256)) for x in range(_SIZE))
                        for y in range(_SIZE))
        idat = _IDATS[colour] = _chunk(b"IDAT", zlib.compress(rows))
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", _SIZE, _SIZE, 8, 2, 0, 0, 0))]
    if metadata_json is not None:
        out.append(_chunk(b"iTXt", b"studiolo\x00\x00\x00\x00\x00" + metadata_json.encode("utf-8")))
    out += [idat, _chunk(b"IEND", b"")]
    return b"".join(out)


_TONES = (220, 330, 440, 660)
_WAVS: dict[int, bytes] = {}


def wav_bytes(tone: int) -> bytes:
    """A 50 ms, 8 kHz, 16-bit mono WAV of a square wave (``tone`` picks its pitch)."""
    data = _WAVS.get(tone)
    if data is None:
        rate, frequency = 8000, _TONES[tone % len(_TONES)]
        period = max(2, rate // frequency)
        samples = [(8000 if (i % period) < period // 2 else -8000) for i in range(rate // 20)]
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
        data = _WAVS[tone] = buffer.getvalue()
    return data
