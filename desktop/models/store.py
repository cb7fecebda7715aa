"""The models on this machine: demo models, models imported into Studiolo's folder, and the Hugging Face cache.

Shared by ``studiolo models …`` and the model manager. References printed here are the ones ``--model``
accepts: an imported model's name, a hub repo id, or ``demo`` (listed as ``demo:GENERATOR_ID``). Which generator
used a model and when comes from :mod:`desktop.models.usage`; the per-generator view is
:mod:`desktop.models.inventory`.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from desktop import paths
from desktop.api import Generator, ModelFormatError, ModelNotFoundError, StudioloError
from desktop.api.errors import DiskFullError
from desktop.api.model_files import describe_file_type
from desktop.api.weights import MAX_FOLDER_ENTRIES, check_model_files
from desktop.engine.memory import human_bytes
from desktop.models import usage
from desktop.models.demo import ensure_demo_model
from desktop.models.resolver import imported_models_dir

NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,99}")

_importing: set[str] = set()  # names being imported now (two imports under one name must not replace each other)
_importing_lock = threading.Lock()


@dataclass(frozen=True)
class InstalledModel:
    ref: str
    source: str  # "demo", "imported" or "hub"
    path: Path
    size_bytes: int
    generator_id: str | None = None  # a demo model's generator, else the one that used it last
    last_used: float | None = None  # seconds since the epoch (from the usage record), None if never used
    used_by: tuple[str, ...] = ()  # the generators that used it or had it imported for them
    details: dict[str, str] = field(default_factory=dict)  # facts from its generator's describe_model()

    @property
    def use_ref(self) -> str:
        """The reference to run it with (``--model``, a generator page's model chooser): ``demo`` for a demo model."""
        return "demo" if self.source == "demo" else self.ref

    def to_json(self) -> dict:
        return {**asdict(self), "path": str(self.path), "used_by": list(self.used_by)}


def disk_size(path: Path) -> int:
    """Bytes of the file, or of the files under the folder; links count nothing (a hub snapshot's files are links
    to its blobs) and are not followed. A file that vanishes or cannot be read while it is measured (a download
    renaming its parts) counts 0; a missing path is 0."""
    try:
        if path.is_file():
            return path.stat().st_size
    except OSError:
        return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            total += 0 if stat.S_ISLNK(info.st_mode) else info.st_size
    return total


def demo_models_dir() -> Path:
    """The folder of the demo models (``DATA/models/demo/GENERATOR_ID/VERSION``)."""
    return paths.data_dir() / "models" / "demo"


def with_usage(model: InstalledModel, uses: usage.Uses) -> InstalledModel:
    """``model`` with ``last_used``, ``used_by`` and (when it has none) ``generator_id`` from the usage record."""
    used_by = tuple(usage.generators_of(model.ref, uses))
    last = usage.last_used(model.ref, uses)
    generator_id = model.generator_id
    if generator_id is None and used_by:
        generator_id = max(used_by, key=lambda g: usage.last_used_by(g, model.ref, uses) or 0.0)
    return replace(model, last_used=last, used_by=used_by, generator_id=generator_id)


def list_installed(*, include_hub: bool = True, file_patterns: Sequence[str] = ()) -> list[InstalledModel]:
    """Every demo, imported and (with ``include_hub``) Hugging Face cache model, with its size on disk and usage.
    Hub models include partial downloads (their size counts what is on disk). A cached repo holding files that
    match ``file_patterns`` (the single-file generators' ``model_file_patterns``) is listed as those files instead,
    each its own model (``org/name/file.gguf``, removable on its own). Scans the disk: not for the GUI thread."""
    found: list[InstalledModel] = []
    demo_root = demo_models_dir()
    if demo_root.is_dir():
        for folder in sorted(p for p in demo_root.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
            found.append(InstalledModel(f"demo:{folder.parent.name}", "demo", folder, disk_size(folder),
                                        generator_id=folder.parent.name))
    imported = imported_models_dir()
    if imported.is_dir():
        for path in sorted(p for p in imported.iterdir() if not p.name.startswith(".")):
            found.append(InstalledModel(path.name, "imported", path, disk_size(path)))
    if include_hub:
        from desktop.models import hub

        for model in hub.list_cached_models():
            files = hub.cached_files(model.repo_id, list(file_patterns)) if file_patterns else []
            if not files:
                found.append(InstalledModel(model.repo_id, "hub", model.path, model.size_bytes))
            for filename, path in files:
                found.append(InstalledModel(hub.file_ref(model.repo_id, filename), "hub", path, _blob_size(path)))
    uses = usage.read_all()
    return [with_usage(m, uses) for m in found]


def _blob_size(path: Path) -> int:
    try:
        return path.stat().st_size  # links followed: the blob's size
    except OSError:
        return 0


def import_model(source: Path, *, name: str | None = None, allow_pickle: bool = False,
                 generator_id: str | None = None) -> InstalledModel:
    """Copy a model file or folder into Studiolo's model folder (checked first; atomic: all or nothing).
    ``generator_id``: the generator it is imported for (recorded in the usage record, so the model manager lists
    it under that generator before its first use)."""
    if not str(source).strip():
        raise ModelNotFoundError("The path to import is blank.", hint="Give a model file or folder to import.")
    source = source.expanduser()
    if not source.exists():
        raise ModelNotFoundError(f"Nothing to import at {source}: no such file or folder.",
                                 hint="Check the path, or give a model file or folder.")
    name = name or source.name
    if not NAME.fullmatch(name):
        raise StudioloError(f"{name!r} cannot be a model name.",
                            hint="Use letters, digits, '.', '-' and '_' only (--name).")
    check_model_files(source, allow_pickle=allow_pickle)
    dest_root = imported_models_dir()
    dest = dest_root / name
    with _importing_lock:
        if dest.exists():
            raise _already_imported(name)
        if name in _importing:
            raise StudioloError(f"A model named {name!r} is being imported right now.",
                                hint="Wait for that import to finish, or choose another name with --name.")
        _importing.add(name)
    try:
        _copy_into(source, dest)
    finally:
        with _importing_lock:
            _importing.discard(name)
    if generator_id:
        usage.tag(generator_id, name)
    return InstalledModel(name, "imported", dest, disk_size(dest), generator_id=generator_id,
                          used_by=(generator_id,) if generator_id else ())


def _already_imported(name: str) -> StudioloError:
    return StudioloError(f"A model named {name!r} is already imported.",
                         hint="Choose another name with --name, or remove the old one first.")


def _copy_into(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` through a hidden staging folder beside it (all or nothing; an existing ``dest``
    is never replaced)."""
    dest_root = dest.parent
    try:
        dest_root.mkdir(parents=True, exist_ok=True)
        needed = _source_size(source)
        free = shutil.disk_usage(dest_root).free
    except OSError as exc:
        raise StudioloError(f"Could not prepare Studiolo's model folder {dest_root}: {exc}",
                            hint="Check that the folder can be written to, then try again.") from exc
    if needed > free:
        raise DiskFullError(f"Importing {source.name} needs {human_bytes(needed)}, but only {human_bytes(free)} "
                            f"is free in {dest_root}.", hint="Free some disk space and try again.")
    tmp: Path | None = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=".importing-", dir=dest_root))
        staged = tmp / dest.name
        if source.is_dir():
            shutil.copytree(source, staged)
        else:
            shutil.copy2(source, staged)
        with _importing_lock:
            if dest.exists():  # made by another program meanwhile: never replace it
                raise _already_imported(dest.name)
            staged.rename(dest)
    except OSError as exc:
        raise StudioloError(f"Could not copy {source} into {dest_root}: {exc}",
                            hint="Check that the source can be read and that the disk has room, then try "
                                 "again; nothing was imported.") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def _source_size(source: Path) -> int:
    """Bytes that copying ``source`` writes (links followed, as the copy follows them). :class:`ModelFormatError`
    naming what is wrong when ``source`` is a folder of more than :data:`MAX_FOLDER_ENTRIES` entries (not a model:
    ``/`` or a home folder) or holds a named pipe, device or socket (copying one would never end)."""
    if source.is_file():
        return source.stat().st_size
    total = count = 0
    special: ModelFormatError | None = None  # reported once the whole folder is known to be small enough
    for root, dirs, files in os.walk(source, followlinks=True):
        count += len(dirs) + len(files)
        if count > MAX_FOLDER_ENTRIES:
            raise ModelFormatError(f"{source} holds more than {MAX_FOLDER_ENTRIES} files and folders: it does not "
                                   "look like a model folder.",
                                   hint="Import the folder that holds the model's files, or a model file.")
        for name in files:
            try:
                info = os.stat(os.path.join(root, name))
            except OSError:
                continue  # a link to nothing: the copy names it
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
            elif special is None:
                special = ModelFormatError(f"{os.path.join(root, name)} is {describe_file_type(info.st_mode)}, not a "
                                           "file: a model folder holds only files and folders.",
                                           hint="Remove it from the folder, or import another model.")
    if special is not None:
        raise special
    return total


def remove_model(ref: str) -> int:
    """Delete an installed model by the reference ``list_installed`` shows; returns the bytes freed. Its usage
    record goes with it."""
    freed = _remove_files(ref)
    usage.forget(ref)
    return freed


def _remove_files(ref: str) -> int:
    if ref.startswith("demo:"):
        folder = demo_models_dir() / ref.removeprefix("demo:")
        if not NAME.fullmatch(ref.removeprefix("demo:")) or not folder.is_dir():
            raise ModelNotFoundError(f"There is no demo model {ref!r}.",
                                     hint="`studiolo models list` shows the installed ones.")
        return _delete(folder, ref)
    if NAME.fullmatch(ref) and (imported_models_dir() / ref).exists():
        return _delete(imported_models_dir() / ref, ref)
    if "/" in ref:
        from desktop.models import hub
        from desktop.models.resolver import split_hub_file

        one_file = split_hub_file(ref)
        if one_file is not None:  # one file of a repo: the repo's other files stay
            return hub.remove_cached_file(one_file[0], one_file[1])
        return hub.remove_cached(ref)
    raise ModelNotFoundError(f"No installed model {ref!r}.", hint="`studiolo models list` shows the installed ones.")


def _delete(path: Path, ref: str) -> int:
    """Delete a model file or folder; returns the bytes freed."""
    size = disk_size(path)
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except OSError as exc:
        raise StudioloError(f"Could not delete the model {ref} ({path}): {exc}",
                            hint="Close programs that may be using it and check the folder's permissions, then "
                                 "try again.") from exc
    return size


def build_demo_models(generators: Iterable[Generator]) -> list[tuple[Generator, Path]]:
    """Build (or keep) the demo model of each of ``generators`` that has one; returns (generator, folder) pairs."""
    return [(g, ensure_demo_model(g)) for g in generators if g.has_demo_model]
