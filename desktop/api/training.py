"""Training as a generator capability (API 0.2.4): :class:`TrainingKind`, :class:`TrainingContext`,
:class:`TrainingResult`, and the dataset helpers every trainer needs (:func:`training_files`, :func:`file_manifest`).

A generator that can fine-tune its model lists what it trains in ``Generator.training_kinds`` and implements
``Generator.train``. The host runs a training job like any other — queued, in the generator's worker process, with
progress, previews and cancel — and adds what a long job needs: checkpoints written atomically into the run's own
folder, resume from the latest one, pause (a checkpoint, then stop), an estimate checked before the real work
starts, and, at the end, the trained model imported into the model store under the name the user gave, listed with
the add-on kind ``TrainingKind.result_kind``, its provenance (base model and hash, dataset manifest, params, the
loss at every step) recorded in it.

This module imports nothing heavy.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api.context import RunContext
from desktop.api.errors import ParamError

__all__ = ["TrainingKind", "TrainingContext", "TrainingResult", "training_files", "file_manifest"]


@dataclass(frozen=True)
class TrainingKind:
    """(API 0.2.4) Something a generator can train. Listed in ``Generator.training_kinds``.

    Attributes:
        id: a short lowercase word naming it within its generator (``"lora"``); never change it.
        name: what the user picks (``"LoRA from your pictures"``).
        Params: a frozen dataclass of :func:`~desktop.api.param` fields: the training's own settings (data, steps,
            learning rate, rank, ``checkpoint_every``…). Validated like a generator's ``Params``.
        result_kind: the id of one of the generator's ``addon_kinds``: the trained model is imported into that
            model list (so the user picks it in the panel like any downloaded one).
        description: one sentence for the training window and ``studiolo train --help``.
    """

    id: str
    name: str
    Params: type
    result_kind: str
    description: str = ""


@dataclass
class TrainingResult:
    """What ``Generator.train`` returns: ``path``, the trained model — a ``.safetensors`` file or a folder, inside
    ``ctx.work_dir`` — which the host imports into the model store (recording its provenance in the file's
    ``__metadata__`` or a ``training.json`` in the folder); ``metadata``, JSON values the plugin records
    about it (the base model's family, the trigger word, the dataset's captions…) — the host adds its own
    provenance beside them. ``dataset``: the :func:`file_manifest` of the files it trained on."""

    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    dataset: list[dict[str, Any]] = field(default_factory=list)


class TrainingContext(RunContext):
    """(API 0.2.4) What ``Generator.train`` gets: a :class:`RunContext` (seed, device, ``progress``, ``preview``,
    ``cancelled``, ``warn``) and the training's own part. A training loop looks like::

        start, state = 0, None
        if ctx.resume_from is not None:                     # the latest checkpoint, when the job resumes
            start, folder = ctx.resume_from
            state = load_my_state(folder)                   # weights, optimiser, RNG states, data order
        ctx.check_fit(peak_bytes=..., seconds_per_step=...) # after a short warm-up, before the real work
        for step in range(start + 1, params.steps + 1):
            loss = one_step()
            ctx.step_done(step, params.steps, loss)         # progress, loss curve; cancel/pause noticed here
            if ctx.checkpoint_due(step, params.checkpoint_every, params.steps):
                ctx.save_checkpoint(step, lambda folder: save_my_state(folder))
            ctx.raise_if_stopping()                         # after the checkpoint: cancel or pause ends here

    Attributes:
        work_dir: this run's own folder, the same for every resume of it (the host keeps ``checkpoints/`` in it;
            put samples and the result there too).
        resume_from: ``(step, folder)`` of the latest complete checkpoint when the job resumes a run, else None.
    """

    work_dir: Path
    resume_from: tuple[int, Path] | None = None

    @abstractmethod
    def step_done(self, step: int, total: int, loss: float, **metrics: float) -> None:
        """Report optimisation step ``step`` (1-based) of ``total`` done, with its ``loss`` (and any other numbers,
        e.g. ``lr``): the progress bar, the loss curve, the training log kept in the result's provenance."""

    @abstractmethod
    def checkpoint_due(self, step: int, every: int, total: int) -> bool:
        """Whether to write a checkpoint after ``step``: every ``every`` steps (0: never on a schedule), at the last
        step, and when the user asked to pause (the run stops after that checkpoint)."""

    @abstractmethod
    def save_checkpoint(self, step: int, write: Callable[[Path], None]) -> Path:
        """Write a checkpoint of ``step``: ``write(folder)`` fills an empty folder with everything a resume needs
        (weights being trained, optimiser state, RNG states, the data order). The host then makes it the latest
        checkpoint in one rename; the one before stays valid until then, so a crash or a full disk while writing
        leaves the previous checkpoint to resume from (a full disk raises ``DiskFullError`` after cleaning up).
        Returns the checkpoint's folder. Older checkpoints than the two newest are removed."""

    @abstractmethod
    def check_fit(self, *, peak_bytes: int, seconds_per_step: float) -> None:
        """Report what a short warm-up measured: ``peak_bytes``, the training's memory on ``ctx.device`` at its
        peak — the base model you loaded included (on CUDA, ``torch.cuda.max_memory_allocated`` since before the
        load; on the CPU, how much :func:`~desktop.api.resident_memory` grew since before it) — and the time a step
        takes. The host shows the estimate and raises :class:`~desktop.api.InsufficientMemoryError` with it when
        the device cannot give that much (what is free there plus what this process holds already); call it
        before the real work, so an impossible run is refused in seconds."""

    @abstractmethod
    def raise_if_stopping(self) -> None:
        """End the run here when the user cancelled or paused it (raises ``JobCancelled``; the host tells the two
        apart). Call it right after a due checkpoint, so a pause resumes exactly from where it stopped."""


def training_files(sources: Iterable[str | Path], suffixes: Sequence[str], *, param_name: str) -> list[Path]:
    """The files a training reads: each source a file, or a folder searched (recursively, sorted, hidden files
    skipped) for files with one of ``suffixes`` (``(".png", ".jpg")``, compared lowercase). Raises
    :class:`~desktop.api.ParamError` on ``param_name`` for a source that does not exist or cannot be read, and
    when no file is found at all — saying what was looked for."""
    found: list[Path] = []
    wanted = tuple(s.lower() for s in suffixes)
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            try:
                candidates = sorted(p for p in path.rglob("*") if p.is_file()
                                    and not any(part.startswith(".") for part in p.relative_to(path).parts))
            except OSError as exc:
                raise ParamError(param_name, str(source), f"the folder cannot be read: {exc.strerror or exc}") from exc
            found += [p for p in candidates if p.suffix.lower() in wanted]
        elif path.is_file():
            found.append(path)
        else:
            raise ParamError(param_name, str(source), "no such file or folder")
    if not found:
        listed = ", ".join(str(s) for s in sources) or "nothing"
        raise ParamError(param_name, listed, f"no {'/'.join(wanted)} files to train on there")
    return list(dict.fromkeys(found))


def file_manifest(files: Iterable[Path]) -> list[dict[str, Any]]:
    """``[{"file": name, "sha256": …, "bytes": …}]`` of ``files``: the dataset a model was trained on, recorded in
    its provenance (a file that cannot be read is recorded with ``"sha256": None``)."""
    manifest = []
    for path in files:
        digest: str | None
        try:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
            size: int | None = Path(path).stat().st_size
        except OSError:
            digest, size = None, None
        manifest.append({"file": Path(path).name, "sha256": digest, "bytes": size})
    return manifest

