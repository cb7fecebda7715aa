"""Reproduce exactly: what a re-run needs, recorded with every output, and the re-run that checks it.

Every saved output's metadata carries a ``reproduce`` record, written by the host for every generator
(:meth:`desktop.engine.worker.GeneratorWorker.metadata`, through :func:`reproduce_facts`)::

    "reproduce": {"model_sha256": "…", "versions": {"torch": "2.13.0", "diffusers": "0.37.0", …},
                  "device": "cpu", "python": "3.11.9"}

``model_sha256`` is :func:`desktop.batch.dataset.model_weights_hash` of the resolved model (cached per path and
the files' sizes and mtimes: a big local checkpoint is read once per process); ``versions`` are those of the
distributions of the generator's ``preload_modules`` (read with :mod:`importlib.metadata`: nothing is imported).
A generator may add more to its outputs' own metadata: the image generator writes ``dtype`` and ``scheduler``.

:func:`reproduce` reads the params, seed, model and generator back from a library item or a file, runs the job
again through an :class:`~desktop.engine.engine.Engine`, compares the new output with the original (pixels,
samples: the largest absolute difference; text: exact) and says which recorded facts changed since.

No Qt, torch or numpy at import: the worker thread imports this module for every save.
"""

from __future__ import annotations

import functools
import importlib.metadata
import io
import logging
import math
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import StudioloError

log = logging.getLogger(__name__)

RECORD = "reproduce"
"""The key of the record in an output's metadata."""

_ALSO = {"diffusers": ("transformers",)}
"""Distributions a generator's outputs depend on beyond its ``preload_modules``' own (diffusers pipelines run
transformers' text encoders)."""


class ReproduceError(StudioloError):
    """The job cannot be re-run at all (no metadata, an unknown item or generator, a partial output)."""


# -- the record ---------------------------------------------------------------------------------------------------


def reproduce_facts(generator: Any, device: str | None, model_path: Path | str | None) -> dict[str, Any]:
    """The ``reproduce`` record of an output of ``generator`` made on ``device`` with the model at ``model_path``
    (None: no model). Never raises: a fact that cannot be found is None (and logged)."""
    return {
        "model_sha256": model_hash(model_path),
        "versions": library_versions(tuple(getattr(generator, "preload_modules", ()) or ())),
        "device": device,
        "python": platform.python_version(),
    }


def model_hash(model_path: Path | str | None) -> str | None:
    """The weights hash of the model at ``model_path``, or None (no model, or it cannot be read)."""
    if model_path is None:
        return None
    from desktop.batch.dataset import model_weights_hash

    try:
        return model_weights_hash(Path(model_path))
    except (OSError, StudioloError):
        log.warning("no weights hash for the model at %s", model_path, exc_info=True)
        return None


@functools.lru_cache(maxsize=64)
def library_versions(modules: tuple[str, ...]) -> dict[str, str]:
    """``{distribution: version}`` of the distributions that provide ``modules`` (top-level names looked up with
    :func:`importlib.metadata.packages_distributions`), plus those in :data:`_ALSO`; uninstalled ones left out.
    Read once per process: the worker keeps the libraries it imported until it ends."""
    providers = _packages_distributions()
    names: list[str] = []
    for module in modules:
        for dist in providers.get(module.partition(".")[0], [module.partition(".")[0]]):
            names += [dist, *_ALSO.get(dist.lower(), ())]
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return dict(sorted(versions.items()))


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    try:
        return dict(importlib.metadata.packages_distributions())
    except Exception:  # a broken distribution in the environment: fall back to module name = distribution name
        log.warning("cannot map modules to distributions", exc_info=True)
        return {}


# -- the re-run ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """A recorded fact that is different now."""

    what: str  # "model file's hash", "torch version", "device", "dtype", …
    recorded: Any
    now: Any

    def __str__(self) -> str:
        return f"the {self.what} changed: recorded {self.recorded}, now {self.now}"


@dataclass(frozen=True)
class Report:
    """The outcome of :func:`reproduce`. ``difference``: the largest absolute difference (pixel values 0–255,
    audio samples -1–1; text: 0 or 1); ``detail`` says it in words; ``changes``: recorded facts that differ now;
    ``unrecorded``: the original has no ``reproduce`` record (made before it existed), so nothing was compared."""

    source: str
    kind: str
    identical: bool
    difference: float
    detail: str
    changes: tuple[Change, ...] = ()
    unrecorded: bool = False
    job_id: str | None = None
    output: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        head = "identical" if self.identical else f"differs ({self.detail})"
        lines = [f"{self.source}: {head}"]
        if self.changes:
            lines[0] += ", and " + "; ".join(map(str, self.changes))
        elif not self.identical and not self.unrecorded:
            lines.append("Nothing recorded changed (model hash, library versions, device): the generator is not "
                         "deterministic here.")
        if self.unrecorded:
            lines.append("The original records no library versions or model hash (made before Studiolo recorded "
                         "them): what changed cannot be said.")
        return "\n".join(lines)


@dataclass(frozen=True)
class _Original:
    label: str
    path: Path
    metadata: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """What a re-run needs, read back from the original (:func:`prepare`): the job to submit again
    (``generator_id``, ``params``, ``model``, ``seed``) and what :func:`compare` compares with."""

    original: _Original
    generator_id: str
    generator: Any = field(repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    seed: int | None = None
    watermark: bool = False  # the original was marked invisibly: so is the re-run (the mark changes the output)

    @property
    def label(self) -> str:
        return self.original.label

    def submit(self, engine: Any) -> Any:
        """Queue the re-run on ``engine`` (its outputs delivered, not saved) and return the job."""
        return engine.submit(self.generator_id, dict(self.params), model=self.model, seed=self.seed,
                             watermark=self.watermark, save=False)


def prepare(source: int | str | Path, engine: Any, library: Any = None) -> Prepared:
    """Read what re-running ``source`` (a library item id, or the path of a file with Studiolo's metadata or its
    JSON sidecar) needs. ``library``: where item ids are looked up (default: the engine's). Reads the library and
    the file: call it off the GUI thread there. Raises :class:`ReproduceError` when it cannot be re-run."""
    original = _original(source, library if library is not None else getattr(engine, "library", None))
    metadata = original.metadata
    generator_id = str(metadata["generator"])
    try:
        generator = engine.plugins.generator(generator_id)
    except StudioloError as exc:
        raise ReproduceError(f"{original.label} was made by {generator_id}, which is not installed.",
                             hint="Install the plugin that provides it (`studiolo plugins list`).") from exc
    output = metadata.get("output") if isinstance(metadata.get("output"), dict) else {}
    return Prepared(original, generator_id, generator, dict(metadata.get("params") or {}),
                    model=metadata.get("model"), seed=metadata.get("seed"), watermark=bool(output.get("watermark")))


def compare(prepared: Prepared, job: Any, outputs: Any, engine: Any) -> Report:
    """The :class:`Report` of the re-run ``job`` (its ``outputs``, as its end signal delivered them) against the
    original. Reads and encodes files and hashes the model: call it off the GUI thread. Raises a
    :class:`StudioloError` when the job was cancelled or gave no output."""
    original, generator, metadata = prepared.original, prepared.generator, prepared.original.metadata
    outputs = list(outputs or [])
    if job.state.value == "cancelled":
        raise StudioloError(f"The re-run of {original.label} was cancelled.", hint="Run it again to compare.")
    if not outputs:
        raise StudioloError(f"The re-run of {original.label} {job.state.value}: {job.error or 'no output'}",
                            hint="Fix what the message says, then try again.")
    kind = str(metadata.get("kind") or generator.kind)
    best: tuple[bool, float, str, Any] | None = None
    for output in outputs:
        compared = (*_compare(kind, original.path, output, generator, metadata), output)
        if best is None or compared[1] < best[1]:
            best = compared
    assert best is not None
    identical, difference, detail, output = best
    recorded = metadata.get(RECORD)
    changes: tuple[Change, ...] = ()
    if isinstance(recorded, dict):
        model_path = _model_path(engine, generator, job.model)
        now = reproduce_facts(generator, job.device, model_path)
        changes = _changes(recorded, now, metadata.get("output") or {}, _as_saved(getattr(output, "metadata", None)))
    return Report(source=original.label, kind=kind, identical=identical, difference=difference, detail=detail,
                  changes=changes, unrecorded=not isinstance(recorded, dict), job_id=job.id, output=output)


def reproduce(source: int | str | Path, engine: Any, library: Any = None, *, follow: Any = None) -> Report:
    """Re-run the job that made ``source`` (a library item id, or the path of a file with Studiolo's metadata or
    its JSON sidecar) through ``engine`` and compare. ``library``: where item ids are looked up (default: the
    engine's); ``follow(job)``: called once the job is queued (a Ctrl+C handler). Raises :class:`ReproduceError`
    when it cannot be re-run, another :class:`StudioloError` when the job fails or is cancelled. Runs a Qt event
    loop until the job ends: call it from the thread the engine lives on, never from a GUI (there: :func:`prepare`,
    submit, then :func:`compare` off the GUI thread)."""
    prepared = prepare(source, engine, library)
    job, outputs = run_job(engine, prepared.submit, follow=follow)
    return compare(prepared, job, outputs, engine)


def _original(source: int | str | Path, library: Any) -> _Original:
    from desktop.library import metadata_for

    item_id = source if isinstance(source, int) else None
    if isinstance(source, str) and source.isdigit() and not Path(source).exists():
        item_id = int(source)
    if item_id is not None:
        if library is None:
            raise ReproduceError(f"Cannot look up item {item_id}: no library is open.",
                                 hint="Give the output's file instead.")
        item = library.get(item_id)
        if item is None:
            raise ReproduceError(f"There is no item {item_id} in the library.",
                                 hint="`studiolo gallery list` shows the items and their IDs.")
        label, path, metadata = f"item {item_id}", Path(item.path), item.metadata
        if not path.is_file():
            raise ReproduceError(f"The file of item {item_id} is missing: {path}.",
                                 hint="Restore the file, or give a copy of it.")
    else:
        path = Path(source).expanduser()
        label = str(path)
        if not path.is_file():
            raise ReproduceError(f"No such file: {path}.", hint="Give the path of an output, or a library item ID.")
        metadata = metadata_for(path)
    if not isinstance(metadata, dict) or not metadata.get("generator") or not isinstance(metadata.get("params"),
                                                                                          dict):
        raise ReproduceError(f"{label} holds no Studiolo metadata: there is nothing to re-run.",
                             hint="Only outputs that still carry the metadata Studiolo wrote (embedded, or in their "
                                  ".json sidecar) can be reproduced; an edited or re-encoded copy may have lost it.")
    if metadata.get("partial"):
        raise ReproduceError(f"{label} is a partial output (its job was cancelled part-way): a re-run would not "
                             "stop at the same place.", hint="Reproduce an output of a job that finished.")
    return _Original(label, path, metadata)


def run_job(engine: Any, submit: Any, *, follow: Any = None) -> tuple[Any, list[Any]]:
    """Submit a job to ``engine`` with ``submit(engine) -> job`` and run a Qt event loop until it ends;
    ``(job, outputs)`` (outputs: those its last signal delivered, partial ones for a cancelled job).
    ``follow(job)``: called once it is queued."""
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    delivered: dict[str, list[Any]] = {}
    holder: dict[str, Any] = {}

    def ended(job_id: str, outputs: Any = None) -> None:
        if "job" in holder and job_id == holder["job"].id:
            delivered["outputs"] = list(outputs or [])
            loop.quit()

    connections = [(engine.job_finished, ended), (engine.job_cancelled, ended),
                   (engine.job_failed, lambda job_id, _message: ended(job_id))]
    for signal, slot in connections:
        signal.connect(slot)
    try:
        job = holder["job"] = submit(engine)
        if follow is not None:
            follow(job)
        if "outputs" not in delivered:  # the end is signalled from the event loop, never before it runs
            loop.exec()
    finally:
        for signal, slot in connections:
            signal.disconnect(slot)
    return job, delivered.get("outputs", [])


def _model_path(engine: Any, generator: Any, ref: str | None) -> Path | None:
    """The local path of model ``ref`` now (the re-run resolved it already: no download), or None."""
    try:
        return engine.services.resolver.resolve(generator, ref, check=False)
    except StudioloError:
        log.warning("cannot resolve model %s for its hash", ref, exc_info=True)
        return None


def _as_saved(metadata: Any) -> dict[str, Any]:
    """An output's metadata as its file would hold it (through JSON: tuples as lists, numbers as JSON has them)."""
    import json

    from desktop.library import metadata_to_json

    return json.loads(metadata_to_json(metadata)) if isinstance(metadata, dict) else {}


def _changes(recorded: dict[str, Any], now: dict[str, Any], recorded_output: dict[str, Any],
             now_output: dict[str, Any]) -> tuple[Change, ...]:
    changes = []
    if recorded.get("model_sha256") != now.get("model_sha256"):
        changes.append(Change("model file's hash", recorded.get("model_sha256"), now.get("model_sha256")))
    old, new = recorded.get("versions") or {}, now.get("versions") or {}
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            changes.append(Change(f"{name} version", old.get(name, "not installed"), new.get(name, "not installed")))
    if recorded.get("device") != now.get("device"):
        changes.append(Change("device", recorded.get("device"), now.get("device")))
    for key in ("dtype", "scheduler"):  # what a generator adds to its outputs (the image generator does)
        if key in recorded_output and recorded_output.get(key) != now_output.get(key):
            changes.append(Change(key, recorded_output.get(key), now_output.get(key)))
    old_config, new_config = recorded_output.get("scheduler_config"), now_output.get("scheduler_config")
    if isinstance(old_config, dict) and isinstance(new_config, dict) and old_config != new_config:
        keys = sorted(k for k in set(old_config) | set(new_config) if old_config.get(k) != new_config.get(k))
        changes.append(Change("scheduler config", {k: old_config.get(k) for k in keys},
                              {k: new_config.get(k) for k in keys}))
    return tuple(changes)


# -- comparing ------------------------------------------------------------------------------------------------------


def _compare(kind: str, path: Path, output: Any, generator: Any, metadata: dict[str, Any]) -> tuple[bool, float, str]:
    """``(identical, largest difference, in words)`` of ``output`` against the file at ``path``. The new output is
    encoded the way the original was (the generator's encoder, else the host's), so both go through the same
    rounding (16-bit WAV samples, PNG modes)."""
    from desktop.library import default_encode

    encoded = generator.encode_output(output, metadata) or default_encode(output, metadata)
    data = encoded.data
    if kind == "text":
        old, new = path.read_bytes().decode("utf-8", "replace"), bytes(data).decode("utf-8", "replace")
        if old == new:
            return True, 0.0, "the same text"
        at = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
        return False, 1.0, f"the texts differ from character {at}"
    if kind == "image":
        return _compare_arrays(_image_array(path), _image_array(io.BytesIO(data)), "pixel value", "of 255")
    if kind == "audio":
        return _compare_arrays(_audio_array(path), _audio_array(io.BytesIO(data)), "sample difference", "")
    if path.read_bytes() == bytes(data):
        return True, 0.0, "the same bytes"
    return False, math.inf, "the files' bytes differ"


def _compare_arrays(old: Any, new: Any, unit: str, scale: str) -> tuple[bool, float, str]:
    import numpy as np

    if old.shape != new.shape:
        return False, math.inf, f"the shapes differ: {old.shape} then, {new.shape} now"
    if old.size == 0:
        return True, 0.0, "both empty"
    largest = float(np.max(np.abs(old.astype(np.float64) - new.astype(np.float64))))
    if largest == 0:
        return True, 0.0, "the same values"
    return False, largest, f"largest {unit} difference {largest:g}{' ' + scale if scale else ''}"


def _image_array(source: Any) -> Any:
    import numpy as np
    from PIL import Image

    with Image.open(source) as image:
        return np.asarray(image.convert("RGBA") if image.mode not in ("L", "RGB", "RGBA", "I;16", "I") else image)


def _audio_array(source: Any) -> Any:
    import soundfile

    samples, _rate = soundfile.read(source, dtype="float64", always_2d=True)
    return samples
