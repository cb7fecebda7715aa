"""A training job, the host's side (issue 22): what the worker thread does for a job that trains instead of
generating — resolve the base model, make room (the generator's loaded models are unloaded: training loads its own
copy), run ``Generator.train`` through the runner (in the worker process, with the run's folder, resume and pause),
then import the result into the model store and record its provenance in it.

Provenance (the ``studiolo_training`` record): the generator and the training kind, the base model's reference and
weights' hash, the params, the dataset manifest (file names, SHA-256, sizes), the loss at every step (the run's
``log.jsonl``, across resumes), the warm-up's estimate, library versions and device, the plugin's own facts, and
when. It is written into the result before the import: into the ``__metadata__`` of a ``.safetensors`` file (as a
JSON string, where other tools' LoRA metadata lives too), or as ``training.json`` inside a result folder.
"""

from __future__ import annotations

import json
import logging
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import ParamError, StudioloError, to_json
from desktop.api.files import atomic_write_bytes
from desktop.api.training import TrainingResult

log = logging.getLogger(__name__)

RECORD = "studiolo_training"
"""The key of the provenance record (safetensors ``__metadata__``; the name of the JSON file is ``training.json``)."""
FOLDER_RECORD = "training.json"


@dataclass
class TrainingRequest:
    """What makes a job a training: the generator's training ``kind``, the ``name`` the result is imported under,
    whether to ``resume`` the run of that name from its latest checkpoint. Filled in as it goes: ``paused`` (the
    job ended on a pause: resume it), ``estimate`` (the warm-up's), ``result`` (the imported model's reference),
    ``record`` (its provenance)."""

    kind: str
    name: str
    resume: bool = False
    paused: bool = False
    estimate: dict[str, Any] | None = None
    result: str | None = None
    record: dict[str, Any] = field(default_factory=dict)


def training_kind(generator: Any, kind: str) -> Any:
    """The generator's :class:`~desktop.api.TrainingKind` ``kind``; ``ParamError`` naming the ones it has."""
    for spec in getattr(generator, "training_kinds", ()) or ():
        if getattr(spec, "id", None) == kind:
            return spec
    offered = ", ".join(k.id for k in getattr(generator, "training_kinds", ()) or ()) or "nothing"
    raise ParamError("kind", kind, f"{generator.name} cannot train that (it trains: {offered})")


def provenance(*, generator: Any, kind: str, job: Any, model_hash: str | None, result: TrainingResult,
               work_dir: Path, estimate: dict[str, Any] | None, versions: dict[str, Any]) -> dict[str, Any]:
    """The ``studiolo_training`` record of a finished run (see the module docstring)."""
    from desktop import __version__
    from desktop.engine.training import read_log

    return {
        "studiolo_version": __version__,
        "generator": generator.id,
        "generator_version": generator.version,
        "training": kind,
        "base_model": job.model,
        "base_model_sha256": model_hash,
        "params": to_json(job.params),
        "seed": job.seed,
        "device": job.device,
        "dataset": result.dataset,
        "log": [{k: v for k, v in entry.items()} for entry in read_log(work_dir)],
        "estimate": estimate,
        "versions": versions,
        "plugin": result.metadata,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_provenance(path: Path, record: dict[str, Any]) -> None:
    """Record ``record`` in the trained model at ``path``: a ``.safetensors`` file's ``__metadata__`` (the header
    rewritten, the tensors' bytes copied as they are), or ``training.json`` in a folder."""
    text = json.dumps(record, ensure_ascii=False, default=str)
    if path.is_dir():
        atomic_write_bytes(path / FOLDER_RECORD, (text + "\n").encode("utf-8"))
        return
    if path.suffix.lower() != ".safetensors":  # nowhere to keep it that the import takes along
        log.warning("the trained model %s is neither a .safetensors file nor a folder: no provenance recorded", path)
        return
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        body = f.read()
    metadata = dict(header.get("__metadata__") or {})
    metadata[RECORD] = text
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the tensors stay 8-byte aligned, as the format recommends
    atomic_write_bytes(path, struct.pack("<Q", len(encoded)) + encoded + body)


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The ``studiolo_training`` record of a trained model (file or folder), or None. Never raises."""
    try:
        if path.is_dir():
            return json.loads((path / FOLDER_RECORD).read_text(encoding="utf-8"))
        from desktop.api import safetensors_header

        text = (safetensors_header(path).get("__metadata__") or {}).get(RECORD)
        return json.loads(text) if isinstance(text, str) else None
    except (OSError, ValueError, StudioloError):
        return None


def import_result(generator: Any, spec: Any, request: TrainingRequest, result_path: Path) -> str:
    """Import the trained model at ``result_path`` into the model store as ``request.name`` (``.safetensors``
    kept on a file), in the model list ``GENERATOR+RESULT_KIND``; the reference to use it by."""
    from desktop.models.addons import SEPARATOR
    from desktop.models.store import import_model

    name = request.name + (result_path.suffix if result_path.is_file() else "")
    installed = import_model(result_path, name=name, generator_id=f"{generator.id}{SEPARATOR}{spec.result_kind}")
    return installed.ref


def check_name_free(generator: Any, spec: Any, name: str) -> None:
    """``ParamError`` when ``name`` cannot be the trained model's name, or a model of that name exists."""
    from desktop.models.resolver import imported_models_dir
    from desktop.models.store import NAME

    if not NAME.fullmatch(name or ""):
        raise ParamError("out", name, "use letters, digits, '.', '-' and '_' only (at most 100)")
    folder = imported_models_dir()
    taken = [p for p in (folder / name, folder / f"{name}.safetensors") if p.exists()]
    if taken:
        raise ParamError("out", name, f"a model named {taken[0].name} exists already: choose another name, or "
                                      "remove it in the model manager first")


RUN_RECORD = "run.json"
"""In a run's folder: what a resume needs to be the same run (params, base model, seed)."""


@dataclass(frozen=True)
class TrainingPlan:
    """A training job checked and ready to queue (:func:`plan`)."""

    spec: Any
    params: Any
    model: str | None
    seed: int | None


def plan(generator: Any, kind: str, params: Any, *, name: str, model: str | None, seed: int | None,
         resume: bool, restart: bool) -> TrainingPlan:
    """Check a training request before it is queued: the kind, the params (a ``Params`` instance of the kind, a
    dict, or None for the defaults; on ``resume`` None means the run's own), the result's ``name`` (free, unless
    resuming), and what is in the run's folder already: a run of that name that stopped part-way must be resumed
    (``resume``) or started over (``restart``: its checkpoints and log are discarded). A resume takes the run's
    params, base model and seed (``run.json``), so it continues the same run."""
    from desktop.api import from_json, validate
    from desktop.engine.training import checkpoints, run_dir

    spec = training_kind(generator, kind)
    work_dir = run_dir(generator.id, name)
    check_name_free(generator, spec, name)
    recorded = read_run_record(work_dir)
    if resume:
        if recorded is None:
            raise ParamError("resume", name, f"there is no run named {name!r} to resume (no {work_dir / RUN_RECORD})")
        params = recorded["params"] if params is None else params
        model = model or recorded.get("model")
        seed = recorded.get("seed") if seed is None else seed
    elif checkpoints(work_dir) and not restart:
        step = checkpoints(work_dir)[-1][0]
        raise ParamError("out", name, f"a run named {name!r} stopped at step {step} (checkpoint in {work_dir}): "
                                      "resume it, or start it over (its checkpoints are then discarded)")
    elif restart:
        import shutil

        shutil.rmtree(work_dir, ignore_errors=True)
    if params is None:
        params = spec.Params()
    elif isinstance(params, dict):
        params = from_json(spec.Params, params, strict=True)
    elif not isinstance(params, spec.Params):
        raise ParamError("params", params, f"expected {spec.Params.__qualname__} for {generator.id} {kind}")
    return TrainingPlan(spec, validate(params, spec.Params), model or generator.default_model, seed)


def read_run_record(work_dir: Path) -> dict[str, Any] | None:
    """The run's ``run.json`` (params, model, seed, kind), or None."""
    try:
        record = json.loads((work_dir / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("params"), dict) else None


def write_run_record(work_dir: Path, job: Any) -> None:
    """Record what a resume of ``job``'s run needs, in its folder (first start only)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    record = {"kind": job.training.kind, "params": to_json(job.params), "model": job.model, "seed": job.seed}
    atomic_write_bytes(work_dir / RUN_RECORD, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
