"""Which generator used which model, and when: a small JSON file in Studiolo's data folder.

``DATA/models/usage.json`` maps each generator id to the model references it used (or that were imported for it)
and the time of the last use (seconds since the epoch; ``null`` for a model imported for a generator and not used
yet)::

    {"version": 1, "generators": {"audio.speech": {"facebook/mms-tts-eng": 1767225600.0, "my-voice": null}}}

References are stored in the form the model store lists them: ``demo:GENERATOR_ID`` for a demo model, an imported
model's name (also when it was used by its path in the imported-models folder), anything else as given (a hub repo
id keeps its ``@revision``; :func:`last_used` of ``org/name`` counts every revision).

The record is a convenience, never a reason to fail: a missing, corrupt or unwritable file is logged and treated as
empty, and no function here raises on it. Writes are atomic (:func:`desktop.api.files.atomic_write_json`) and
serialised by a lock, so the engine's worker threads and the model manager can record at the same time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from desktop import paths
from desktop.api.files import atomic_write_json
from desktop.api.models import DEMO_MODEL

log = logging.getLogger(__name__)

VERSION = 1
Uses = dict[str, dict[str, "float | None"]]  # generator id -> {reference: last use or None}

_lock = threading.RLock()


def usage_file() -> Path:
    """Where the record lives (``DATA/models/usage.json``)."""
    return paths.data_dir() / "models" / "usage.json"


def canonical_ref(generator_id: str, ref: str) -> str:
    """The form a reference is recorded in: ``demo`` becomes ``demo:GENERATOR_ID``, a path into the imported-models
    folder becomes the imported model's name, anything else is kept (stripped)."""
    text = ref.strip()
    if text == DEMO_MODEL:
        return f"{DEMO_MODEL}:{generator_id}"
    if "/" in text or "\\" in text:
        from desktop.models.resolver import imported_models_dir

        try:
            path = Path(text).expanduser()
            if path.is_absolute():
                relative = path.resolve().relative_to(imported_models_dir().resolve())
                if len(relative.parts) >= 1:
                    return relative.parts[0]
        except (OSError, ValueError):
            pass
    return text


def base_ref(ref: str) -> str:
    """A hub reference without its ``@revision`` (other references unchanged)."""
    if "/" in ref and not ref.startswith(("/", ".", "~")) and "\\" not in ref:
        return ref.partition("@")[0]
    return ref


def _read() -> Uses:
    """The record as a dict (empty when missing or unreadable; bad entries are skipped)."""
    path = usage_file()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("the model usage record %s is unreadable (%s); starting a new one", path, exc)
        return {}
    generators = raw.get("generators") if isinstance(raw, dict) else None
    if not isinstance(generators, dict):
        log.warning("the model usage record %s has an unknown form; starting a new one", path)
        return {}
    uses: Uses = {}
    for generator_id, refs in generators.items():
        if not isinstance(generator_id, str) or not isinstance(refs, dict):
            continue
        kept: dict[str, float | None] = {}
        for ref, when in refs.items():
            if isinstance(ref, str) and (when is None or (isinstance(when, (int, float))
                                                          and not isinstance(when, bool))):
                kept[ref] = None if when is None else float(when)
        uses[generator_id] = kept
    return uses


def _write(uses: Uses) -> None:
    try:
        atomic_write_json(usage_file(), {"version": VERSION, "generators": uses})
    except OSError as exc:
        log.warning("could not save the model usage record %s: %s", usage_file(), exc)


def read_all() -> Uses:
    """Every generator's references with their last use (a copy; empty when there is no readable record)."""
    with _lock:
        return _read()


def record_use(generator_id: str, ref: str | None, *, clock: Callable[[], float] = time.time) -> None:
    """Note that ``generator_id`` used model ``ref`` now. Never raises (a failure is logged); a job without a model
    (``ref`` None or empty) records nothing."""
    if not ref:
        return
    try:
        key = canonical_ref(generator_id, ref)
        if not key:
            return
        with _lock:
            uses = _read()
            uses.setdefault(generator_id, {})[key] = float(clock())
            _write(uses)
    except Exception:  # a record of convenience must never fail a job
        log.warning("could not record that %s used %s", generator_id, ref, exc_info=True)


_noted: dict[tuple[str, str, str], float] = {}
_noted_lock = threading.Lock()


def note_use(generator_id: str, ref: str | None, *, min_interval: float = 60.0,
             monotonic: Callable[[], float] = time.monotonic, clock: Callable[[], float] = time.time) -> None:
    """:func:`record_use`, but at most once per ``min_interval`` seconds for the same generator and model: cheap
    enough for the engine to call on every job (the file is rewritten only when the minute-resolution "last used"
    would change). Never raises."""
    if not ref:
        return
    now = monotonic()
    key = (str(usage_file()), generator_id, ref)  # per usage file: another STUDIOLO_HOME is another record
    with _noted_lock:
        last = _noted.get(key)
        if last is not None and now - last < min_interval:
            return
        _noted[key] = now
    record_use(generator_id, ref, clock=clock)


def tag(generator_id: str, ref: str) -> None:
    """Note that model ``ref`` is meant for ``generator_id`` (imported for it) without counting a use. Never
    raises."""
    try:
        key = canonical_ref(generator_id, ref)
        if not key:
            return
        with _lock:
            uses = _read()
            uses.setdefault(generator_id, {}).setdefault(key, None)
            _write(uses)
    except Exception:
        log.warning("could not record %s as a model of %s", ref, generator_id, exc_info=True)


def forget(ref: str) -> None:
    """Drop every record of ``ref`` (and, for a hub id, of its revisions): the model was removed. Never raises."""
    try:
        with _lock:
            uses = _read()
            changed = False
            for refs in uses.values():
                for stored in [r for r in refs if r == ref or base_ref(r) == ref]:
                    del refs[stored]
                    changed = True
            if changed:
                _write({g: refs for g, refs in uses.items() if refs})
    except Exception:
        log.warning("could not forget the model %s in the usage record", ref, exc_info=True)


def last_used(ref: str, uses: Uses | None = None) -> float | None:
    """When any generator last used ``ref`` (a hub id without revision counts all its revisions); None if never.
    ``uses``: a record already read with :func:`read_all`, to avoid reading the file again."""
    uses = read_all() if uses is None else uses
    times = [when for refs in uses.values() for stored, when in refs.items()
             if when is not None and (stored == ref or base_ref(stored) == ref)]
    return max(times, default=None)


def last_used_by(generator_id: str, ref: str, uses: Uses | None = None) -> float | None:
    """When ``generator_id`` last used ``ref`` (any revision of a hub id); None if never."""
    uses = read_all() if uses is None else uses
    refs = uses.get(generator_id, {})
    return max((when for stored, when in refs.items()
                if when is not None and (stored == ref or base_ref(stored) == ref)), default=None)


def refs_for(generator_id: str, uses: Uses | None = None) -> list[str]:
    """The references ``generator_id`` used or had imported for it, the most recently used first (never-used ones
    last, by name)."""
    uses = read_all() if uses is None else uses
    refs = uses.get(generator_id, {})
    return sorted(refs, key=lambda r: (refs[r] is None, -(refs[r] or 0.0), r))


def generators_of(ref: str, uses: Uses | None = None) -> list[str]:
    """The generators that used ``ref`` or had it imported for them (any revision of a hub id), sorted."""
    uses = read_all() if uses is None else uses
    return sorted(g for g, refs in uses.items() if any(r == ref or base_ref(r) == ref for r in refs))
