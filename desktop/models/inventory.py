"""Per generator: the models on disk it can use, the models it recommends and how far each is downloaded.

What the model manager shows (and the generator page's model chooser offers):

* **installed** — the generator's demo model once built; the imported models it used or that were imported for it;
  the hub models in the Hugging Face cache that it recommends or used, when their snapshot is complete. Each with
  its size on disk, its source and when it was last used (:mod:`desktop.models.usage`).
* **recommended** — each :class:`~desktop.api.RecommendedModel` with whether it is installed, partially downloaded
  (a cancelled or failed download, which the next download resumes) or absent, the bytes it has on disk and its
  size: the hub's own listing once Studiolo has seen it (kept in the cache by a download, even a cancelled one),
  else the plugin's hand-written size with the date it was checked.

"Complete" means what the engine means when it resolves a hub reference: every file of the listing, pickle-format
weights left out unless the user allowed them — so a model listed here as installed is used without a download.

Everything here reads the disk (and walks model folders to measure them): call it on a worker thread, never on the
GUI thread. :func:`installed_refs` skips the measuring, for a model chooser.

A generator whose models are single files (``Generator.model_file_patterns``, e.g. ``*.gguf``) has each matching
file as its own model: every matching file in the Hugging Face cache (reference ``org/name/file.gguf``) and every
imported file that matches. A recommended whole repo is then a place to choose a file from (its status says which
of its files are here); a recommended file reference (``org/name/file.gguf``) is downloaded as it is. The facts a
generator gives about a model (``Generator.describe_model``) come with each installed model (``details``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from desktop.api import Generator, ModelSource, RecommendedModel
from desktop.api.weights import PICKLE_SUFFIXES
from desktop.models import hub, usage
from desktop.models.demo import demo_model_dir
from desktop.models.resolver import HUB_ID, imported_models_dir, matches_patterns, split_hub_file
from desktop.models.store import InstalledModel, demo_models_dir, disk_size, with_usage

log = logging.getLogger(__name__)

INSTALLED = "installed"
PARTIAL = "partial"
ABSENT = "absent"


@dataclass(frozen=True)
class RecommendedStatus:
    """A recommended model and how much of it is on this machine."""

    model: RecommendedModel
    state: str  # INSTALLED, PARTIAL or ABSENT
    bytes_on_disk: int = 0  # what is in the cache, partial files included
    hub_size_bytes: int | None = None  # the download's size from the hub's listing, when the cache holds one
    choose_file: bool = False  # a whole repo for a single-file generator: the user picks one of its files
    files: tuple[str, ...] = ()  # with choose_file: the repo's matching files downloaded already

    @property
    def ref(self) -> str:
        return self.model.ref

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def description(self) -> str:
        return self.model.description

    @property
    def license(self) -> str | None:
        return self.model.license

    @property
    def size_bytes(self) -> int | None:
        """The best size known: the hub's listing, else the plugin's (see :attr:`size_checked`)."""
        return self.hub_size_bytes if self.hub_size_bytes is not None else self.model.size_bytes

    @property
    def size_checked(self) -> str | None:
        """When a hand-written size was checked (``"2026-11"``); None for a size from the hub's listing."""
        return None if self.hub_size_bytes is not None else self.model.size_checked

    @property
    def installed(self) -> bool:
        return self.state == INSTALLED

    @property
    def partial(self) -> bool:
        return self.state == PARTIAL


@dataclass(frozen=True)
class GeneratorModels:
    """What :func:`models_for` found for one generator."""

    generator_id: str
    installed: list[InstalledModel] = field(default_factory=list)
    recommended: list[RecommendedStatus] = field(default_factory=list)

    @property
    def disk_bytes(self) -> int:
        """Bytes on disk of this generator's installed models."""
        return sum(m.size_bytes for m in self.installed)

    def recommended_status(self, ref: str) -> RecommendedStatus | None:
        return next((r for r in self.recommended if r.ref == ref), None)


# -- the hub cache ----------------------------------------------------------------------------------------------

def pickle_ignore_patterns(allow_pickle: bool) -> list[str] | None:
    """The ``ignore_patterns`` the engine downloads hub models with: pickle-format weights left out unless allowed."""
    return None if allow_pickle else [f"*{suffix}" for suffix in PICKLE_SUFFIXES]


def _valid_repo(repo_id: str) -> bool:
    return "@" not in repo_id and bool(HUB_ID.fullmatch(repo_id)) and "--" not in repo_id and ".." not in repo_id


def _looks_like_hub_id(ref: str) -> bool:
    repo = ref.partition("@")[0]
    return "/" in repo and not repo.startswith(("/", ".", "~")) and "\\" not in repo and not Path(ref).exists()


def hub_repo_folder(repo_id: str) -> Path:
    """The folder of ``repo_id`` in the Hugging Face cache (whether it exists or not)."""
    return hub.hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def _has_downloaded_bytes(folder: Path) -> bool:
    blobs = folder / "blobs"
    try:
        return blobs.is_dir() and any(p.is_file() for p in blobs.iterdir())
    except OSError:
        return False


def hub_state(repo_id: str, revision: str | None = None, *, allow_pickle: bool = False) -> str:
    """:data:`INSTALLED` (a complete snapshot), :data:`PARTIAL` (some files or parts of files downloaded: the next
    download resumes them) or :data:`ABSENT`. No network."""
    if hub.cached_snapshot(repo_id, revision, ignore_patterns=pickle_ignore_patterns(allow_pickle)) is not None:
        return INSTALLED
    return PARTIAL if _has_downloaded_bytes(hub_repo_folder(repo_id)) else ABSENT


def listed_size(repo_id: str, revision: str | None = None, *, allow_pickle: bool = False) -> int | None:
    """The bytes a download of ``repo_id`` fetches in all, from the hub's listing kept in the cache (written by any
    download, even a cancelled one); None when the cache has no listing. No network."""
    listing = _cached_listing(repo_id, revision)
    if listing is None:
        return None
    try:
        from huggingface_hub.utils import filter_repo_objects

        wanted = filter_repo_objects(list(listing), ignore_patterns=pickle_ignore_patterns(allow_pickle))
        return sum(int(listing[path].size or 0) for path in wanted)
    except Exception:  # an unreadable listing: size unknown
        return None


def _hub_installed(repo_id: str, revision: str | None, allow_pickle: bool) -> InstalledModel | None:
    snapshot = hub.cached_snapshot(repo_id, revision, ignore_patterns=pickle_ignore_patterns(allow_pickle))
    if snapshot is None:
        return None
    folder = hub_repo_folder(repo_id)
    ref = f"{repo_id}@{revision}" if revision else repo_id
    return InstalledModel(ref, "hub", folder, disk_size(folder))


def _file_size(path: Path) -> int:
    try:
        return path.stat().st_size  # the blob the snapshot's link points to
    except OSError:
        return 0


def _hub_file_installed(repo_id: str, filename: str, revision: str | None) -> InstalledModel | None:
    path = hub.cached_file(repo_id, filename, revision)
    if path is None:
        return None
    return InstalledModel(hub.file_ref(repo_id, filename, revision), "hub", path, _file_size(path))


def cached_model_files(patterns: tuple[str, ...]) -> list[tuple[str, Path]]:
    """``(reference, local path)`` of every file in the Hugging Face cache matching ``patterns`` (each its own
    model, ``org/name/file.gguf``), sorted by reference. Reads a few folders per cached repo; no network."""
    if not patterns:
        return []
    found = []
    for folder in hub_model_folders():
        repo_id = folder.name.removeprefix("models--").replace("--", "/")
        found.extend((hub.file_ref(repo_id, name), path) for name, path in hub.cached_files(repo_id, patterns))
    return sorted(found)


def _file_partial(repo_id: str, filename: str) -> tuple[bool, int | None]:
    """Whether part of the file ``filename`` of ``repo_id`` is downloaded (a cancelled download), and its size from
    the hub's listing kept in the cache (None when unknown). No network."""
    listing = _cached_listing(repo_id, None)
    entry = listing.get(filename) if listing else None
    if entry is None:
        return False, None
    etag = entry.lfs.sha256 if entry.lfs is not None else entry.blob_id
    partial = hub_repo_folder(repo_id) / "blobs" / f"{etag}.incomplete"
    return partial.is_file(), int(entry.size or 0)


def _cached_listing(repo_id: str, revision: str | None) -> dict | None:
    """The hub's listing of ``repo_id`` kept in the cache by a download (path → entry), or None."""
    folder = hub_repo_folder(repo_id)
    try:
        from huggingface_hub import get_cached_repo_tree

        commit = None
        ref = folder / "refs" / (revision or "main")
        if ref.is_file():
            commit = ref.read_text().strip() or None
        if commit is None:
            trees = sorted((folder / "trees").glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            if not trees:
                return None
            commit = trees[0].stem
        return {f.path: f for f in get_cached_repo_tree(repo_id, revision=commit, cache_dir=hub.hub_cache_dir())}
    except Exception:  # no listing (never downloaded) or an unreadable one
        return None


def details_text(details: dict[str, str]) -> str:
    """A model's facts on one line, values only (``qwen2 · Q4_K_M · 32768 tokens``); "" for none."""
    return " · ".join(details.values())


def describe(generator: Generator, path: Path) -> dict[str, str]:
    """``generator.describe_model(path)``, guarded: anything but a dict of strings (an exception included) gives
    ``{}``. Runs the plugin's code in this process: call it on a worker thread."""
    if type(generator).describe_model is Generator.describe_model:
        return {}
    try:
        facts = generator.describe_model(path)
        if not isinstance(facts, dict):
            return {}
        return {str(k): str(v) for k, v in facts.items() if str(k).strip() and str(v).strip()}
    except Exception:
        log.warning("%s could not describe the model at %s", generator.id, path, exc_info=True)
        return {}


# -- per generator --------------------------------------------------------------------------------------------

def _demo(generator: Generator) -> InstalledModel | None:
    if not generator.has_demo_model:
        return None
    folder = demo_model_dir(generator)
    if not folder.is_dir():
        return None
    return InstalledModel(f"demo:{generator.id}", "demo", folder, disk_size(folder), generator_id=generator.id)


def _hub_candidates(generator: Generator, used: list[str]) -> list[tuple[str, str | None]]:
    """(repo id, revision) of the recommended models and of the hub models the generator used, without repeats."""
    refs = [m.ref for m in generator.recommended_models] + [r for r in used if _looks_like_hub_id(r)]
    seen: dict[tuple[str, str | None], None] = {}
    for ref in refs:
        repo, _, revision = ref.strip().partition("@")
        if _valid_repo(repo):
            seen.setdefault((repo, revision or None), None)
    return list(seen)


def _hub_file_candidates(generator: Generator, used: list[str]) -> list[tuple[str, str, str | None]]:
    """(repo id, filename, revision) of the single-file hub references it recommends or used, without repeats."""
    refs = [m.ref for m in generator.recommended_models] + [r for r in used if _looks_like_hub_id(r)]
    seen: dict[tuple[str, str, str | None], None] = {}
    for ref in refs:
        one_file = split_hub_file(ref)
        if one_file is not None:
            seen.setdefault(one_file, None)
    return list(seen)


def _hub_files(generator: Generator, used: list[str]) -> list[InstalledModel]:
    """The single-file hub models of ``generator`` in the cache: its recommended and used file references, and
    for a single-file generator every matching file in the cache."""
    found: dict[str, InstalledModel] = {}
    for repo, filename, revision in _hub_file_candidates(generator, used):
        model = _hub_file_installed(repo, filename, revision)
        if model is not None:
            found.setdefault(model.ref, model)
    for ref, path in cached_model_files(tuple(generator.model_file_patterns)):
        found.setdefault(ref, InstalledModel(ref, "hub", path, _file_size(path)))
    return list(found.values())


def _imported_paths(used: list[str], patterns: tuple[str, ...] = ()) -> list[tuple[str, Path]]:
    """The imported models among the references ``used`` (which also hold hub ids, paths and demo references), and
    every imported file matching ``patterns`` (a single-file generator's)."""
    folder = imported_models_dir()
    plain = [r for r in used if "/" not in r and "\\" not in r and ":" not in r and not r.startswith(".")]
    found = {ref: folder / ref for ref in plain if (folder / ref).exists()}
    if patterns:
        try:
            files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
        except OSError:
            files = []
        for path in files:
            if matches_patterns(path.name, patterns):
                found.setdefault(path.name, path)
    return list(found.items())


def _imported(used: list[str], patterns: tuple[str, ...] = ()) -> list[InstalledModel]:
    return [InstalledModel(ref, "imported", path, disk_size(path)) for ref, path in _imported_paths(used, patterns)]


def models_for(generator: Generator, *, allow_pickle: bool = False) -> GeneratorModels:
    """The installed and recommended models of ``generator`` (see the module docstring). Reads and measures the
    disk: call it on a worker thread."""
    uses = usage.read_all()
    used = usage.refs_for(generator.id, uses)
    installed: list[InstalledModel] = []
    demo = _demo(generator)
    if demo is not None:
        installed.append(demo)
    patterns = tuple(generator.model_file_patterns)
    installed.extend(_imported(used, patterns))
    if not patterns:  # a single-file generator's models are files, not whole repos
        for repo, revision in _hub_candidates(generator, used):
            model = _hub_installed(repo, revision, allow_pickle)
            if model is not None and all(m.ref != model.ref for m in installed):
                installed.append(model)
    installed.extend(m for m in _hub_files(generator, used) if all(m.ref != i.ref for i in installed))
    installed = [replace(with_usage(m, uses), details=describe(generator, m.path)) for m in installed]
    order = {"demo": 0, "imported": 1, "hub": 1}
    installed.sort(key=lambda m: (order.get(m.source, 2), -(m.last_used or 0.0), m.ref.lower()))

    recommended = []
    for model in generator.recommended_models:
        status = _recommended_status(generator, model, allow_pickle)
        if status is not None:
            recommended.append(status)
    return GeneratorModels(generator.id, installed, recommended)


def _recommended_status(generator: Generator, model: RecommendedModel, allow_pickle: bool
                        ) -> RecommendedStatus | None:
    one_file = split_hub_file(model.ref)
    if one_file is not None:
        repo, filename, revision = one_file
        path = hub.cached_file(repo, filename, revision)
        partial, size = _file_partial(repo, filename)
        if path is not None:
            return RecommendedStatus(model, INSTALLED, _file_size(path), size)
        return RecommendedStatus(model, PARTIAL if partial else ABSENT, 0, size)
    repo, _, revision = model.ref.partition("@")
    if not _valid_repo(repo):
        log.warning("%s recommends %r, which is not a hub repo id", generator.id, model.ref)
        return None
    patterns = tuple(generator.model_file_patterns)
    if patterns:  # the user picks one of its files
        cached = hub.cached_files(repo, patterns)
        on_disk = sum(_file_size(path) for _name, path in cached)
        return RecommendedStatus(model, INSTALLED if cached else ABSENT, on_disk, None, choose_file=True,
                                 files=tuple(name for name, _path in cached))
    state = hub_state(repo, revision or None, allow_pickle=allow_pickle)
    folder = hub_repo_folder(repo)
    on_disk = disk_size(folder) if state != ABSENT else 0
    return RecommendedStatus(model, state, on_disk, listed_size(repo, revision or None, allow_pickle=allow_pickle))


def installed_refs(generator: Generator, *, allow_pickle: bool = False) -> list[tuple[str, str]]:
    """``(label, reference)`` of the models ``generator`` can run now without a download, for a model chooser: the
    demo model (``"demo"``, built or buildable), imported models it used or had imported for it, and complete hub
    models it recommends or used. No sizes are measured, but it reads the disk (a few small files per model): call
    it off the GUI thread when the list can be long."""
    uses = usage.read_all()
    used = usage.refs_for(generator.id, uses)
    choices: list[tuple[str, str]] = []
    if generator.has_demo_model and ModelSource.DEMO in generator.model_sources:
        choices.append(("Demo model (tiny, offline)", "demo"))
    patterns = tuple(generator.model_file_patterns)
    choices.extend((f"{ref} (imported)", ref) for ref, _path in _imported_paths(used, patterns))
    names = {m.ref: m.name for m in generator.recommended_models}
    if ModelSource.HUB in generator.model_sources:
        for repo, revision in _hub_candidates(generator, used) if not patterns else ():
            ref = f"{repo}@{revision}" if revision else repo
            if hub.cached_snapshot(repo, revision, ignore_patterns=pickle_ignore_patterns(allow_pickle)) is not None:
                choices.append((f"{names[ref]} ({ref})" if ref in names else ref, ref))
        for model in _hub_files(generator, used):
            if all(model.ref != ref for _label, ref in choices):
                choices.append((f"{names[model.ref]} ({model.ref})" if model.ref in names else model.ref, model.ref))
    return choices


# -- everything ------------------------------------------------------------------------------------------------

def with_details(models: list[InstalledModel], generators: list[Generator]) -> list[InstalledModel]:
    """``models`` (from :func:`desktop.models.store.list_installed`) with the facts their generator gives
    (:func:`describe`): by the generator it belongs to (a demo model's, else the one that used it last), else by
    the first single-file generator whose patterns its file name matches that has something to say. Runs plugin
    code and reads model headers: a worker's job."""
    by_id = {g.id: g for g in generators}
    described = []
    for model in models:
        name = model.ref.partition("@")[0].rsplit("/", 1)[-1]
        owner = by_id.get(model.generator_id) if model.generator_id else None
        candidates = [owner] if owner is not None else []
        candidates += [g for g in generators if g is not owner and g.model_file_patterns
                       and matches_patterns(name, tuple(g.model_file_patterns))]
        details: dict[str, str] = {}
        for generator in candidates:  # the first that can tell something about it
            details = describe(generator, model.path)
            if details:
                break
        described.append(replace(model, details=details))
    return described


def hub_model_folders() -> list[Path]:
    """The model repos' folders in the Hugging Face cache (complete or not)."""
    cache = hub.hub_cache_dir()
    try:
        return sorted(p for p in cache.glob("models--*") if p.is_dir())
    except OSError:
        return []


def total_disk_bytes() -> int:
    """Bytes on disk of every model: demo and imported models, and every model repo in the Hugging Face cache
    (partial downloads included; the cache is shared with other tools). Walks the folders: a worker's job."""
    return (disk_size(demo_models_dir()) + disk_size(imported_models_dir())
            + sum(disk_size(folder) for folder in hub_model_folders()))


def label_for_path(path: str | Path) -> str:
    """A short name for a resolved model path (what the engine's model cache keys hold): ``demo`` for a demo model,
    an imported model's name, a hub model's repo id, else the path itself. No disk access."""
    text = str(path)
    if not text:
        return "(no model)"
    p = Path(text)
    for root, label in ((demo_models_dir(), "demo"), (imported_models_dir(), None)):
        try:
            relative = p.relative_to(root)
        except ValueError:
            continue
        if relative.parts:
            return label or relative.parts[0]
    try:
        relative = p.relative_to(hub.hub_cache_dir())
    except ValueError:
        return text
    if relative.parts and relative.parts[0].startswith("models--"):
        repo_id = relative.parts[0].removeprefix("models--").replace("--", "/")
        if len(relative.parts) > 3 and relative.parts[1] == "snapshots":  # one file of the repo
            return hub.file_ref(repo_id, "/".join(relative.parts[3:]))
        return repo_id
    return text
