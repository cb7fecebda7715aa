"""Turn a model reference into local files.

A reference is, in this order: ``demo`` (the generator's demo model, built on first use), a local folder or
file, the name of a model imported into Studiolo's model folder, or a Hugging Face hub repo id (``org/name`` or
``org/name@revision``), downloaded into the standard Hugging Face cache when it is not there yet — or one file of
a hub repo (``org/name/path/in/repo.ext``, optionally ``@revision``): only that file is downloaded, and the
reference resolves to the file itself. A path that exists here always wins over a hub reference that looks the same.

A generator whose models are single files (:attr:`~desktop.api.Generator.model_file_patterns`, e.g. ``*.gguf``)
given a whole repo gets the repo's one matching file; a repo with several is refused, listing them (pick one).
"""

from __future__ import annotations

import errno
import fnmatch
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
from desktop.api.remote import REMOTE_SCHEME, parse_remote_ref, remote_servers
from desktop.api.weights import PICKLE_SUFFIXES, check_model_files, is_pickle, pickle_refused
from desktop.models.demo import ensure_demo_model

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?(@[\w./-]{1,128})?")
HUB_FILE = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96})/(?P<file>[\w.-]{1,255}(?:/[\w.-]{1,255}){0,15})"
                      r"(?:@(?P<revision>[\w./-]{1,128}))?")
"""One file of a hub repo: ``org/name/path/in/repo.ext`` with an optional ``@revision``."""
ProgressFn = Callable[[int, "int | None", str], None]


def matches_patterns(filename: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Whether the path ``filename`` (in a repo or a folder) matches one of the fnmatch ``patterns``, as the hub's
    ``allow_patterns`` match: on the whole path, case-sensitively."""
    return any(fnmatch.fnmatchcase(filename, pattern) for pattern in patterns)


def imported_models_dir() -> Path:
    return paths.data_dir() / "models" / "imported"


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: ``source`` is a :class:`ModelSource` value; ``value`` the path, name or repo id."""

    source: str
    value: str
    revision: str | None = None
    filename: str | None = None  # a hub reference to one file of the repo: its path in the repo

    @property
    def path(self) -> Path:
        return Path(self.value)


def split_hub_file(text: str) -> tuple[str, str, str | None] | None:
    """``(repo id, file path in the repo, revision or None)`` when ``text`` has the form of a reference to one file
    of a hub repo (``org/name/file.ext[@revision]``), else None. Text only: nothing on disk is looked at."""
    match = HUB_FILE.fullmatch(text.strip())
    if match is None:
        return None
    repo, filename = match["repo"], match["file"]
    if "--" in repo or ".." in repo or any(part in (".", "..") for part in filename.split("/")):
        return None
    return repo, filename, match["revision"]


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
    if text.startswith(REMOTE_SCHEME):
        parse_remote_ref(text)  # a clear error for a reference that names no server or no model
        return ModelRef(ModelSource.REMOTE, text)
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
    starts_like_path = text.startswith((".", "/", "~")) or "\\" in text
    one_file = None if starts_like_path else split_hub_file(text)
    if one_file is not None:
        repo, filename, revision = one_file
        return ModelRef(ModelSource.HUB, repo, revision, filename=filename)
    looks_like_path = starts_like_path or text.endswith((".safetensors", *PICKLE_SUFFIXES))
    if text and not looks_like_path and HUB_ID.fullmatch(text):
        repo, _, revision = text.partition("@")
        return ModelRef(ModelSource.HUB, repo, revision or None)
    raise ModelNotFoundError(f"No model found at {text!r}.",
                             hint="Give a model folder or file that exists, a Hugging Face repo id like "
                                  "'org/name' (or one of its files, 'org/name/file'), or 'demo'.")


def check_remote_server(ref: str) -> None:
    """Refuse a ``remote://SERVER/MODEL`` reference whose server is not configured (:class:`ModelNotFoundError`
    naming the servers there are), before any generator is asked to contact it."""
    server, _model = parse_remote_ref(ref)
    names = [s.name for s in remote_servers()]
    if server not in names:
        raise ModelNotFoundError(f"No server named {server!r} is configured (for {ref}).",
                                 hint=("The servers are: " + ", ".join(names) + ". " if names else "") +
                                      "Add it in Settings → Servers or with `studiolo servers add NAME URL`.")


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
        if parsed.source == ModelSource.REMOTE:  # no files here: the generator gets the reference (LoadOptions)
            check_remote_server(parsed.value)
            return None
        if parsed.source == ModelSource.HUB:
            cancel = cancel or threading.Event()
            patterns = tuple(generator.model_file_patterns)
            if parsed.filename is None and patterns:
                parsed = self._one_file_of(parsed, generator, token, cancel)
            if parsed.filename is not None:
                path = self._file_from_hub(parsed, generator, allow_pickle, cancel, on_progress, token)
            else:
                path = self._from_hub(parsed, allow_pickle, cancel, on_progress, token)
        else:
            path = parsed.path
        if check:
            check_model_files(path, allow_pickle=allow_pickle)
        return path

    @staticmethod
    def _file_from_hub(ref: ModelRef, generator: Generator, allow_pickle: bool, cancel: threading.Event,
                       on_progress: ProgressFn | None, token: str | None) -> Path:
        from desktop.models import hub

        assert ref.filename is not None
        name = hub.file_ref(ref.value, ref.filename, ref.revision)
        if is_pickle(Path(ref.filename)) and not allow_pickle:
            raise pickle_refused(Path(ref.filename))  # before anything is downloaded
        patterns = tuple(generator.model_file_patterns)
        if patterns and not matches_patterns(ref.filename, patterns):
            raise ModelNotFoundError(f"{name} is not a model file {generator.name} can use: it takes "
                                     f"{' or '.join(patterns)} files.",
                                     hint=f"Give one of the repo's {' or '.join(patterns)} files as "
                                          f"{ref.value}/FILE.")
        return hub.download_file(ref.value, ref.filename, revision=ref.revision, token=token, cancel=cancel,
                                 on_progress=on_progress or (lambda *_: None), file_patterns=patterns)

    @staticmethod
    def _one_file_of(ref: ModelRef, generator: Generator, token: str | None, cancel: threading.Event) -> ModelRef:
        """The reference to the one file of the repo ``ref`` that ``generator`` can use (its
        ``model_file_patterns``): the one downloaded already, else the one the repo holds. Several: refused, listed."""
        from desktop.models import hub

        patterns = tuple(generator.model_file_patterns)
        cached = hub.cached_files(ref.value, patterns)
        if len(cached) == 1:
            return ModelRef(ref.source, ref.value, ref.revision, filename=cached[0][0])
        if not cached and hub.is_offline():
            raise ModelNotFoundError(f"No {' or '.join(patterns)} file of {ref.value} is downloaded, and Studiolo "
                                     "is set to work offline (HF_HUB_OFFLINE is set).",
                                     hint=f"Connect to the internet, unset HF_HUB_OFFLINE, and run `studiolo models "
                                          f"files {ref.value}` to choose one.")
        names = ([name for name, _path in cached] if cached else
                 [f.path for f in hub.list_repo_files(ref.value, ref.revision, token, cancel=cancel)
                  if matches_patterns(f.path, patterns)])
        if len(names) == 1:
            return ModelRef(ref.source, ref.value, ref.revision, filename=names[0])
        if not names:
            raise ModelNotFoundError(f"The model repo {ref.value} has no {' or '.join(patterns)} file for "
                                     f"{generator.name}.", hint="Choose another model.")
        listed = ", ".join(names[:10]) + (f" (and {len(names) - 10} more)" if len(names) > 10 else "")
        raise ModelNotFoundError(f"The model repo {ref.value} holds {len(names)} {' or '.join(patterns)} files; "
                                 f"{generator.name} uses one.",
                                 hint=f"Choose one and give it as {ref.value}/FILE: {listed}.")

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
