"""Turn a model reference into local files.

A reference is, in this order: ``demo`` (the generator's demo model, built on first use), a local folder or
file, the name of a model imported into Studiolo's model folder, or a Hugging Face hub repo id (``org/name`` or
``org/name@revision``), downloaded into the standard Hugging Face cache when it is not there yet.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop import paths
from desktop.api import Generator, ModelFormatError, ModelNotFoundError, ModelSource
from desktop.api.model_files import describe_file_type
from desktop.api.models import DEMO_MODEL
from desktop.api.weights import PICKLE_SUFFIXES, check_model_files
from desktop.models.demo import ensure_demo_model

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?(@[\w./-]{1,128})?")
ProgressFn = Callable[[int, "int | None", str], None]


def imported_models_dir() -> Path:
    return paths.data_dir() / "models" / "imported"


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``source`` is a :class:`ModelSource` value; ``value`` the path, name or repo id."""

    source: str
    value: str
    revision: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.value)


def parse_ref(ref: str) -> ModelRef:
    """Classify a reference (no network, nothing opened or searched). Raises :class:`ModelNotFoundError` for one
    that cannot be a model (blank, or nothing there) and :class:`ModelFormatError` for a local path that is neither
    a regular file nor a folder (a named pipe, a device: reading one would never end)."""
    text = ref.strip()
    if not text:
        raise ModelNotFoundError("The model reference is blank.",
                                 hint="Give a model folder or file, a Hugging Face repo id like 'org/name', or "
                                      "'demo'; or give none, for the generator's default model.")
    if text == DEMO_MODEL:
        return ModelRef(ModelSource.DEMO, text)
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~someone who has no home folder here
        path = Path(text)
    source = _local_source(path)
    if source is not None:
        return ModelRef(source, str(path.resolve()))
    imported = imported_models_dir() / text
    source = _local_source(imported) if "/" not in text and "\\" not in text and text not in (".", "..") else None
    if source is not None:
        return ModelRef(source, str(imported))
    looks_like_path = text.startswith((".", "/", "~")) or "\\" in text or text.endswith(
        (".safetensors", *PICKLE_SUFFIXES))
    if text and not looks_like_path and HUB_ID.fullmatch(text):
        repo, _, revision = text.partition("@")
        return ModelRef(ModelSource.HUB, repo, revision or None)
    raise ModelNotFoundError(f"No model found at {text!r}.",
                             hint="Give a model folder or file that exists, a Hugging Face repo id like "
                                  "'org/name', or 'demo'.")


def _local_source(path: Path) -> str | None:
    """``folder`` or ``file`` for a folder or regular file at ``path`` (links followed; ``stat`` only, nothing is
    opened), None when nothing is there. :class:`ModelFormatError` naming it for anything else."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the reference
        return None
    except OSError as exc:
        if exc.errno in (errno.ENAMETOOLONG, errno.ELOOP):
            return None
        raise ModelNotFoundError(f"Cannot read the model at {path}: {exc.strerror or exc}.",
                                 hint="Check the path and its permissions.") from exc
    if stat.S_ISDIR(mode):
        return ModelSource.FOLDER
    if stat.S_ISREG(mode):
        return ModelSource.FILE
    raise ModelFormatError(f"{path} is {describe_file_type(mode)}, not a model file or folder.",
                           hint="Give a model file or folder; pipes and devices cannot be read as models.")


class ModelResolver:
    """Resolves references for the engine's workers (call it on a worker thread: it may download)."""

    def resolve(self, generator: Generator, ref: str | None, *, allow_pickle: bool = False,
                cancel: threading.Event | None = None, on_progress: ProgressFn | None = None,
                token: str | None = None, check: bool = True,
                build_demo: Callable[[Path], None] | None = None) -> Path | None:
        """The local path of ``ref`` (None for no model), downloading it if needed. With ``check`` (the default) its
        weight files are checked (:func:`check_model_files`); the engine passes ``check=False`` and checks only when
        it actually loads the model, so a job on a model already in memory does not re-read its files.
        ``build_demo``: builds a demo model that is not built yet (see :func:`ensure_demo_model`)."""
        if ref is None:
            return None
        parsed = parse_ref(ref)
        if parsed.source not in generator.model_sources:
            raise ModelNotFoundError(f"{generator.name} cannot use a model given as {parsed.source} ({ref}).",
                                     hint="It accepts: " + ", ".join(sorted(generator.model_sources)) + ".")
        if parsed.source == ModelSource.DEMO:
            return ensure_demo_model(generator, build_demo)
        if parsed.source == ModelSource.HUB:
            path = self._from_hub(parsed, allow_pickle, cancel or threading.Event(), on_progress, token)
        else:
            path = parsed.path
        if check:
            check_model_files(path, allow_pickle=allow_pickle)
        return path

    @staticmethod
    def _from_hub(ref: ModelRef, allow_pickle: bool, cancel: threading.Event,
                  on_progress: ProgressFn | None, token: str | None) -> Path:
        from desktop.models import hub

        ignore = None if allow_pickle else [f"*{suffix}" for suffix in PICKLE_SUFFIXES]
        cached = hub.cached_snapshot(ref.value, ref.revision, ignore_patterns=ignore)
        if cached is not None:
            return cached
        return hub.download(ref.value, revision=ref.revision, token=token, cancel=cancel, ignore_patterns=ignore,
                            on_progress=on_progress or (lambda *_: None))
