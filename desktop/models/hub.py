"""Hugging Face hub access for Studiolo's model store: download, look up, list and remove cached models.

Models live in the standard Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``), shared with other tools. Every
function reads the environment when it is called (``HF_ENDPOINT``, ``HF_HUB_OFFLINE``, ``HF_HOME``...), never
huggingface_hub's import-time constants, so settings and tests can change them at any time. Call these from a
worker thread: :func:`download` blocks for as long as the download takes.

How a download runs, and why
----------------------------
huggingface_hub 2.4 has no way to cancel a download, and it does not resume: it writes each file to a
process-unique ``<blob>.<random>.incomplete`` and deletes it when anything fails. So :func:`download` runs the
download in a child process (``download_child.py``) and cancels by **killing** it. That is sound because
everything the child writes is safe to cut at any instruction:

* file bodies go to ``blobs/<hash>.incomplete`` by sequential writes, reported only after each chunk reached the
  OS, so a kill leaves a valid prefix; the child swaps in a version of the library's ``_download_to_tmp_and_move``
  that keeps that file and resumes it next time with ``Range: bytes=N-`` (the library's own ``http_get`` does
  the request) and checks a resumed file against its hash (sha256 / git sha1) before using it;
* a finished file is moved into ``blobs/`` and linked into ``snapshots/<commit>/`` by atomic renames and
  symlinks; ``refs/<revision>`` is written (atomically) only once every file is there, and
  :func:`cached_snapshot` also checks every listed file, so an interrupted download never looks complete;
* the library's per-blob file lock is an ``flock``, which the OS releases when the process dies (on a
  filesystem without ``flock`` it falls back to a lock *file*, which a kill would leave behind: not supported).

Xet: on the real hub most large files are Xet-backed and huggingface_hub would fetch them with ``hf_xet``
(Rust, parallel chunk writes at any offset, into a uniquely named file). Such a partial file is not a prefix
and cannot be resumed, and the Rust threads cannot be stopped from Python. The child therefore sets
``HF_HUB_DISABLE_XET=1``: Xet-backed files then come over plain HTTP from the hub's ``/resolve`` redirect (which
serves them with Range support), at the cost of Xet's deduplication and parallel chunks.

One file of a repo (a GGUF quantisation): :func:`download_file` runs the same child limited to that file
(``allow_patterns``), so it resumes and cancels the same way; :func:`cached_file` looks at that file only, and
:func:`list_repo_files` asks the same child for the repo's listing (files and sizes) without downloading anything.

Other guarantees: the child bounds every request with a timeout, and the parent gives up on a child that says
nothing for :data:`STALL_TIMEOUT_S`; before any file is fetched the free space of the cache's disk is compared
with the bytes still to download (:class:`DiskFullError`, nothing downloaded); every failure becomes a
:class:`~desktop.api.errors.StudioloError` with a message and a hint for a person.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api.errors import DiskFullError, DownloadError, JobCancelled, ModelNotFoundError, StudioloError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
POLL_S = 0.1  # how often a download checks the cancel event (and reports progress, when it moved)
STALL_TIMEOUT_S = 120.0  # a download that makes no progress for this long is abandoned (it resumes next time)
DISK_HEADROOM = 64 * 1024**2  # free space left over after a download, so it does not fill the disk to the brim
LISTED_FILES = 10  # files named in the message for a file that is not in its repo

ProgressFn = Callable[[int, int | None, str], None]
_TRUE = {"1", "ON", "YES", "TRUE"}
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]*/)?[A-Za-z0-9][\w.-]{0,95}$")
_CHILD = Path(__file__).with_name("download_child.py")


def _noop(done: int, total: int | None, message: str) -> None:
    pass


@dataclass(frozen=True)
class CachedModel:
    """A model repo in the Hugging Face cache."""

    repo_id: str
    size_bytes: int  # on disk, partial downloads included (what remove_cached frees)
    path: Path  # the repo's folder in the cache
    last_accessed: float  # timestamps (seconds since the epoch)
    last_modified: float
    revisions: tuple[str, ...]  # commit hashes with a snapshot folder, newest first
    snapshot: Path | None  # the newest complete snapshot, None while no revision is complete


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub would compute it from the environment right now."""
    env = os.environ
    value = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE")
    if not value:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        value = os.path.join(os.path.expanduser(os.path.expandvars(home)), "hub")
    return Path(os.path.expanduser(os.path.expandvars(value)))


def is_offline() -> bool:
    """Whether the hub must not be contacted (``HF_HUB_OFFLINE``, or the older ``TRANSFORMERS_OFFLINE``)."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in _TRUE


def hub_endpoint() -> str:
    """The hub's address (``HF_ENDPOINT``, by default https://huggingface.co)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def _valid(repo_id: str) -> bool:
    return bool(_REPO_ID.match(repo_id)) and "--" not in repo_id and ".." not in repo_id


def _check_repo_id(repo_id: str) -> None:
    if not _valid(repo_id):
        raise ModelNotFoundError(f"{repo_id!r} is not a Hugging Face model name.",
                                 hint="A model name looks like owner/model-name, as in the address of its page.")


def _repo_folder(repo_id: str) -> Path:
    return hub_cache_dir() / ("models--" + repo_id.replace("/", "--"))


def _commit_for(storage: Path, revision: str) -> str | None:
    if re.fullmatch(r"[0-9a-f]{40}", revision):
        return revision
    try:
        return (storage / "refs" / revision).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _complete(repo_id: str, snapshot: Path, allow_patterns: Any = None, ignore_patterns: Any = None) -> bool:
    """Whether every file of the commit's listing (kept by huggingface_hub in the cache) is in the snapshot.
    Without a listing (a snapshot made by another tool) completeness is unknown: not complete."""
    try:
        from huggingface_hub import get_cached_repo_tree
        from huggingface_hub.utils import filter_repo_objects

        listing = get_cached_repo_tree(repo_id, revision=snapshot.name, cache_dir=snapshot.parents[1].parent)
        wanted = filter_repo_objects([f.path for f in listing], allow_patterns=allow_patterns,
                                     ignore_patterns=ignore_patterns)
        return snapshot.is_dir() and all((snapshot / path).is_file() for path in wanted)
    except Exception:  # no listing, unreadable cache: not known to be complete
        return False


def cached_snapshot(repo_id: str, revision: str | None = None, *, allow_patterns: str | Sequence[str] | None = None,
                    ignore_patterns: str | Sequence[str] | None = None) -> Path | None:
    """The snapshot folder of ``repo_id`` at ``revision`` (default ``main``) if all its files are in the cache,
    else None. Pass the same patterns as to :func:`download` if it was limited to some files. No network."""
    if not _valid(repo_id):
        return None
    storage = _repo_folder(repo_id)
    commit = _commit_for(storage, revision or "main")
    if commit is None:
        return None
    snapshot = storage / "snapshots" / commit
    return snapshot if _complete(repo_id, snapshot, allow_patterns, ignore_patterns) else None


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _free_bytes(folder: Path) -> int | None:
    for candidate in (folder, *folder.parents):  # the cache may not exist yet: measure the disk it will be on
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


class _Child:
    """The download process, its event queue and the tail of its log."""

    def __init__(self, request: dict[str, Any]) -> None:
        env = dict(os.environ, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                   HF_HUB_DISABLE_TELEMETRY="1", PYTHONIOENCODING="utf-8")  # telemetry: no extra user-agent probe
        self.proc = subprocess.Popen(
            [sys.executable, "-P", str(_CHILD)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, text=True, encoding="utf-8", errors="replace", bufsize=1,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        self.events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.log_tail: deque[str] = deque(maxlen=40)
        self._threads = [threading.Thread(target=self._read_events, daemon=True),
                         threading.Thread(target=self._read_log, daemon=True)]
        for t in self._threads:
            t.start()
        self.send(json.dumps(request))

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.log_tail.append(line.rstrip())
        self.events.put(None)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log_tail.append(line.rstrip())

    def send(self, line: str) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except OSError:  # it is gone: its end of the story is already in the event queue
            pass

    def stop(self) -> None:
        """Kill it if it still runs, and wait until it is gone (its files are then final)."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # stuck in the kernel (a hung network disk): leave it to the OS
            log.warning("the hub download process %s did not end after a kill", self.proc.pid)
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def download(repo_id: str, *, revision: str | None = None, token: str | None = None, cancel: threading.Event,
             on_progress: ProgressFn = _noop, allow_patterns: str | Sequence[str] | None = None,
             ignore_patterns: str | Sequence[str] | None = None) -> Path:
    """Download a snapshot of the model repo ``repo_id`` into the Hugging Face cache and return its folder.

    ``on_progress(bytes_done, bytes_total or None, message)`` is called as the download goes (at most every
    :data:`POLL_S` while bytes arrive, and once at the end). Setting ``cancel`` stops it within about
    :data:`POLL_S` with :class:`JobCancelled`; what arrived is kept and the next call resumes from there.
    ``token`` defaults to huggingface_hub's (``HF_TOKEN`` or the saved login).

    Raises :class:`ModelNotFoundError` (no such model or revision), :class:`DiskFullError` (not enough space,
    nothing downloaded), :class:`DownloadError` (offline, hub unreachable, access refused, failed halfway).
    """
    _check_repo_id(repo_id)
    revision = revision or "main"
    patterns = {"allow_patterns": _as_list(allow_patterns), "ignore_patterns": _as_list(ignore_patterns)}
    if is_offline():
        snapshot = cached_snapshot(repo_id, revision, **patterns)
        if snapshot is not None:
            on_progress(0, 0, f"{repo_id} is already downloaded")
            return snapshot
        raise _offline_error(repo_id)
    return _run_child(repo_id, revision, token, cancel, on_progress, patterns)


def _offline_error(ref: str) -> DownloadError:
    return DownloadError(
        f"{ref} is not downloaded, and Studiolo is set to work offline (HF_HUB_OFFLINE is set).",
        hint=f"Connect to the internet, unset HF_HUB_OFFLINE, and run `studiolo models pull {ref}`.")


def _start_child(repo_id: str, revision: str, token: str | None, request: dict[str, Any]) -> _Child:
    try:
        return _Child({"repo_id": repo_id, "revision": revision, "token": token, "endpoint": hub_endpoint(),
                       "cache_dir": str(hub_cache_dir()), **request})
    except OSError as exc:
        raise DownloadError(f"Could not reach Hugging Face for {repo_id}: {exc}",
                            hint="Studiolo's installation may be damaged; reinstall it.") from exc


def _run_child(repo_id: str, revision: str, token: str | None, cancel: threading.Event, on_progress: ProgressFn,
               request: dict[str, Any], file_patterns: Sequence[str] = ()) -> Path:
    if cancel.is_set():
        raise JobCancelled(message=f"Download of {repo_id} cancelled.")
    child = _start_child(repo_id, revision, token, request)
    try:
        return _follow(child, repo_id, revision, hub_endpoint(), cancel, on_progress, file_patterns)
    finally:
        child.stop()


# -- single files ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RepoFile:
    """A file of a hub repo, as the hub lists it."""

    path: str  # inside the repo, with ``/`` between folders
    size_bytes: int


def list_repo_files(repo_id: str, revision: str | None = None, token: str | None = None, *,
                    cancel: threading.Event | None = None) -> list[RepoFile]:
    """Every file of the hub repo ``repo_id`` at ``revision`` (default ``main``) with its size, sorted by path.
    Asks the hub (a child process, like :func:`download`, so a stalled hub is abandoned and ``cancel`` stops it).

    Raises :class:`DownloadError` offline (``HF_HUB_OFFLINE``), when the hub cannot be reached or refuses access
    (gated or private), :class:`ModelNotFoundError` for no such repo or revision, :class:`JobCancelled`."""
    _check_repo_id(repo_id)
    revision = revision or "main"
    if is_offline():
        raise DownloadError(f"Cannot list the files of {repo_id}: Studiolo is set to work offline "
                            "(HF_HUB_OFFLINE is set).",
                            hint="Connect to the internet and unset HF_HUB_OFFLINE, then try again.")
    cancel = cancel or threading.Event()
    child = _start_child(repo_id, revision, token, {"allow_patterns": None, "ignore_patterns": None,
                                                     "list_only": True})
    endpoint = hub_endpoint()
    try:
        for event in _events(child, cancel, repo_id, cancelled=f"Listing the files of {repo_id} cancelled.",
                             stalled=f"while listing {repo_id}", stalled_hint="Try again later.",
                             ended=f"Listing the files of {repo_id}", ended_hint="Try again. The log has the details."):
            if event is None:
                continue
            if event.get("event") == "files":
                return [RepoFile(str(path), int(size or 0)) for path, size in event["files"]]
            if event.get("event") == "error":
                log.info("hub listing of %s failed: %s\n%s", repo_id, event, "\n".join(child.log_tail))
                raise _error_for(event, repo_id, revision, endpoint)
        raise AssertionError("unreachable: _events ends only by raising")
    finally:
        child.stop()


def file_ref(repo_id: str, filename: str, revision: str | None = None) -> str:
    """The reference of one file of a hub repo: ``org/name/path/in/repo.ext`` (``@revision`` when given)."""
    return f"{repo_id}/{filename}" + (f"@{revision}" if revision else "")


def _exact(filename: str) -> str:
    """An ``allow_patterns`` entry that matches ``filename`` only (fnmatch's special characters escaped)."""
    return glob.escape(filename)


def cached_file(repo_id: str, filename: str, revision: str | None = None) -> Path | None:
    """The local path of the file ``filename`` of ``repo_id`` at ``revision`` (default ``main``) when it is in the
    cache, complete, else None. Only that file is considered (the rest of the repo need not be there). No network."""
    if not _valid(repo_id) or not _valid_filename(filename):
        return None
    storage = _repo_folder(repo_id)
    commit = _commit_for(storage, revision or "main")
    candidates = [storage / "snapshots" / commit / filename] if commit is not None else []
    if revision is None:  # ``main`` moved on since this file came (another file was downloaded later): still here
        candidates += [path for _name, path in cached_files(repo_id, [_exact(filename)])]
    for path in candidates:
        try:
            if path.is_file():  # a snapshot's link exists once its blob is complete
                return path
        except OSError:
            continue
    return None


def _valid_filename(filename: str) -> bool:
    parts = filename.split("/")
    return bool(filename) and "\\" not in filename and all(p not in ("", ".", "..") for p in parts)


def download_file(repo_id: str, filename: str, *, revision: str | None = None, token: str | None = None,
                  cancel: threading.Event, on_progress: ProgressFn = _noop,
                  file_patterns: Sequence[str] = ()) -> Path:
    """Download only the file ``filename`` of ``repo_id`` (as :func:`download` does a repo: resumable, cancellable,
    with progress) and return its local path. A file not in the repo is a :class:`ModelNotFoundError` naming the
    repo and listing some of its files (those matching ``file_patterns`` when given)."""
    _check_repo_id(repo_id)
    if not _valid_filename(filename):
        raise ModelNotFoundError(f"{filename!r} is not a file name in a Hugging Face repo.",
                                 hint="Give a file as owner/model-name/path/to/file.")
    cached = cached_file(repo_id, filename, revision)
    revision = revision or "main"
    if cached is not None:
        on_progress(0, 0, f"{file_ref(repo_id, filename)} is already downloaded")
        return cached
    if is_offline():
        raise _offline_error(file_ref(repo_id, filename, None if revision == "main" else revision))
    request = {"allow_patterns": [_exact(filename)], "ignore_patterns": None, "required": [filename]}
    snapshot = _run_child(repo_id, revision, token, cancel, on_progress, request, file_patterns)
    path = snapshot / filename
    if not path.is_file():
        raise DownloadError(f"The download of {file_ref(repo_id, filename)} ended without the file.",
                            hint="Try again. If it keeps failing, the log has the details.")
    return path


def cached_files(repo_id: str, patterns: Sequence[str]) -> list[tuple[str, Path]]:
    """``(filename, local path)`` of the complete files of ``repo_id`` in the cache that match ``patterns``
    (fnmatch, on the path inside the repo), from every snapshot, newest first, each filename once. No network."""
    from huggingface_hub.utils import filter_repo_objects

    snapshots = _repo_folder(repo_id) / "snapshots"
    try:
        folders = sorted((p for p in snapshots.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime,
                         reverse=True)
    except OSError:
        return []
    found: dict[str, Path] = {}
    for folder in folders:
        try:
            names = [str(p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file()]
        except OSError:
            continue
        for name in filter_repo_objects(names, allow_patterns=list(patterns)):
            found.setdefault(name, folder / name)
    return sorted(found.items())


def remove_cached_file(repo_id: str, filename: str) -> int:
    """Delete the file ``filename`` of ``repo_id`` from the cache (every snapshot's link to it, and its blob when
    no other link uses it); the rest of the repo stays (the repo's folder goes when nothing is left in it). Returns
    the bytes freed."""
    folder = _repo_folder(repo_id) if _valid(repo_id) and _valid_filename(filename) else None
    links = sorted(folder.glob(f"snapshots/*/{glob.escape(filename)}")) if folder is not None else []
    if folder is None or not links:
        raise ModelNotFoundError(f"{file_ref(repo_id, filename)} is not in the Hugging Face cache "
                                 f"({hub_cache_dir()}).",
                                 hint="It may have been removed already; refresh the list of models.")
    blobs = {(link.parent / os.readlink(link)).resolve() if link.is_symlink() else None for link in links}
    freed = 0
    try:
        for link in links:
            if not link.is_symlink():
                freed += link.stat().st_size
            link.unlink()
        used = {(p.parent / os.readlink(p)).resolve() for p in folder.glob("snapshots/**/*") if p.is_symlink()}
        for blob in blobs - used - {None}:
            if blob is not None and blob.is_file():
                freed += blob.stat().st_size
                blob.unlink()
    except OSError as exc:
        raise StudioloError(f"Could not delete {file_ref(repo_id, filename)} from the cache: {exc}",
                            hint="Close programs that may be using the model, then try again.") from exc
    if not any(p.is_file() for p in folder.glob("snapshots/**/*")):
        from desktop.models.store import disk_size

        freed += disk_size(folder)  # what else is left: listings, partial files
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(hub_cache_dir() / ".locks" / folder.name, ignore_errors=True)
    return freed


def _as_list(patterns: str | Sequence[str] | None) -> list[str] | None:
    return [patterns] if isinstance(patterns, str) else (list(patterns) if patterns is not None else None)


def _follow(child: _Child, repo_id: str, revision: str, endpoint: str, cancel: threading.Event,
            on_progress: ProgressFn, file_patterns: Sequence[str] = ()) -> Path:
    """Relay the child's events until it is done; kill it (via the caller) on cancel or trouble."""
    on_progress(0, None, f"Looking up {repo_id} on {endpoint}")
    latest: tuple[int, int | None, str] | None = None
    reported = latest
    last_report = time.monotonic()
    for event in _events(child, cancel, repo_id,
                         cancelled=f"Download of {repo_id} cancelled. It resumes where it stopped next time.",
                         stalled=f"while sending {repo_id}",
                         stalled_hint="Try again later: the download resumes where it stopped.",
                         ended=f"The download of {repo_id}",
                         ended_hint="Try again: it resumes where it stopped. The log has the details."):
        if event is None:  # quiet for POLL_S: report what came meanwhile
            if latest is not None and latest != reported:
                on_progress(*latest)
                reported, last_report = latest, time.monotonic()
            continue
        kind = event.get("event")
        if kind == "plan":
            _check_space(repo_id, int(event["to_download"]))
            child.send("go")
            total = int(event["total"])
            latest = (int(event["done"]), total, f"Downloading {repo_id} ({event['files']} files, {_human(total)})")
        elif kind == "progress":
            name = event.get("file") or repo_id
            latest = (int(event["done"]), event.get("total"), f"Downloading {name}")
        elif kind == "done":
            total = latest[1] if latest else None
            on_progress(total or 0, total, f"Downloaded {repo_id}")
            return Path(event["path"])
        elif kind == "error":
            log.info("hub download of %s failed: %s\n%s", repo_id, event, "\n".join(child.log_tail))
            raise _error_for(event, repo_id, revision, endpoint, file_patterns)
        if latest is not None and latest != reported and time.monotonic() - last_report >= POLL_S:
            on_progress(*latest)
            reported, last_report = latest, time.monotonic()
    raise AssertionError("unreachable: _events ends only by raising")


def _events(child: _Child, cancel: threading.Event, repo_id: str, *, cancelled: str, stalled: str,
            stalled_hint: str, ended: str, ended_hint: str) -> Iterator[dict[str, Any] | None]:
    """The child's events as they come, and None after each POLL_S without one. Raises :class:`JobCancelled`
    (``cancelled``) once ``cancel`` is set, :class:`DownloadError` when the hub says nothing for STALL_TIMEOUT_S
    ("… stopped answering ``stalled``") or the child ends without a last word ("``ended`` stopped unexpectedly")."""
    last_event = time.monotonic()
    while True:
        if cancel.is_set():
            raise JobCancelled(message=cancelled)
        try:
            event = child.events.get(timeout=POLL_S)
        except queue.Empty:
            if time.monotonic() - last_event > STALL_TIMEOUT_S:
                raise DownloadError(f"The Hugging Face hub at {hub_endpoint()} stopped answering {stalled}.",
                                    hint=stalled_hint) from None
            yield None
            continue
        last_event = time.monotonic()
        if event is None:
            code = child.proc.wait()
            log.warning("hub process for %s ended (exit %s):\n%s", repo_id, code, "\n".join(child.log_tail))
            raise DownloadError(f"{ended} stopped unexpectedly (exit code {code}).", hint=ended_hint)
        yield event


def _check_space(repo_id: str, needed: int) -> None:
    if needed <= 0:
        return
    folder = hub_cache_dir()
    free = _free_bytes(folder)
    if free is not None and free < needed + DISK_HEADROOM:
        raise DiskFullError(
            f"Not enough free disk space to download {repo_id}: it needs {_human(needed)}, "
            f"and the disk of {folder} has {_human(free)} free.",
            hint=f"Free up at least {_human(needed + DISK_HEADROOM - free)} on that disk, or move the Hugging Face "
                 "cache to a bigger disk (set HF_HOME), then try again.")


def _error_for(event: dict[str, Any], repo_id: str, revision: str, endpoint: str,
               file_patterns: Sequence[str] = ()) -> StudioloError:
    kind, phase, status = event.get("kind"), event.get("phase"), event.get("status")
    detail = str(event.get("detail") or "unknown error")
    if kind == "file_not_found":
        return _file_not_found(repo_id, list(event.get("missing") or [detail]), list(event.get("files") or []),
                               file_patterns)
    if kind == "not_found":
        return ModelNotFoundError(f"There is no model named {repo_id} on Hugging Face ({endpoint}).",
                                  hint="Check the name: it looks like owner/model-name, as in the address of its page.")
    if kind == "revision_not_found":
        return ModelNotFoundError(f"The model {repo_id} has no version (revision) named {revision!r}.",
                                  hint="Check the revision, or leave it out to get the latest version.")
    if kind == "auth":
        return DownloadError(
            f"Hugging Face refused access to {repo_id} (HTTP {status}): the model is gated or private.",
            hint="Set a Hugging Face access token (the HF_TOKEN environment variable, or Studiolo's settings), "
                 f"then open {endpoint}/{repo_id} signed in with the same account and accept the model's licence. "
                 "If it still fails, check the model's name: the hub answers the same way for a name that does "
                 "not exist.")
    if kind == "offline":
        return DownloadError(f"{repo_id} cannot be downloaded: Hugging Face access is switched off (HF_HUB_OFFLINE).",
                             hint=f"Unset HF_HUB_OFFLINE, then run `studiolo models pull {repo_id}`.")
    if kind == "disk_full":
        return DiskFullError(f"The disk filled up while downloading {repo_id}.",
                             hint="Free some disk space, then try again.")
    if kind == "corrupt":
        return DownloadError(f"A file of {repo_id} arrived damaged ({detail}) and was deleted.",
                             hint="Try again: that file is downloaded afresh.")
    if phase == "plan" and kind == "network":
        return DownloadError(f"Could not reach the Hugging Face hub at {endpoint} to download {repo_id} ({detail}).",
                             hint="Check the internet connection (and any proxy or firewall), then try again.")
    if phase == "plan" and kind == "http":
        return DownloadError(f"The Hugging Face hub at {endpoint} answered with an error ({detail}) for {repo_id}.",
                             hint="The hub may be having trouble: try again later.")
    if phase == "download" and kind in ("network", "http"):
        return DownloadError(f"The download of {repo_id} stopped halfway: {detail}.",
                             hint="Try again: the download will resume where it stopped.")
    return DownloadError(f"Downloading {repo_id} failed: {detail}",
                         hint="Try again: what was downloaded is kept. If it keeps failing, the log has the details.")


def _file_not_found(repo_id: str, missing: list[str], files: list[str], patterns: Sequence[str]) -> StudioloError:
    from huggingface_hub.utils import filter_repo_objects

    shown = list(filter_repo_objects(files, allow_patterns=list(patterns) or None))
    listed = ", ".join(shown[:LISTED_FILES]) + (f" (and {len(shown) - LISTED_FILES} more)"
                                                  if len(shown) > LISTED_FILES else "")
    kinds = " or ".join(patterns)
    if shown:
        hint = f"Its {kinds + ' ' if kinds else ''}files: {listed}. Give one as {repo_id}/FILE."
    else:
        hint = f"It has no {kinds + ' ' if kinds else ''}files. Check the repo and the file name."
    return ModelNotFoundError(f"The model repo {repo_id} has no file named {missing[0]!r}.", hint=hint)


def list_cached_models() -> list[CachedModel]:
    """The model repos in the Hugging Face cache, largest first. Never raises: an unreadable cache is empty."""
    try:
        from huggingface_hub import scan_cache_dir

        folder = hub_cache_dir()
        if not folder.is_dir():
            return []
        info = scan_cache_dir(folder)
        models = []
        for repo in info.repos:
            if repo.repo_type != "model":
                continue
            revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
            snapshot = next((r.snapshot_path for r in revisions if _complete(repo.repo_id, r.snapshot_path)), None)
            partial = sum(f.size_on_disk for f in info.incomplete_files if f.file_path.parents[1] == repo.repo_path)
            models.append(CachedModel(
                repo_id=repo.repo_id, size_bytes=repo.size_on_disk + partial, path=repo.repo_path,
                last_accessed=repo.last_accessed, last_modified=repo.last_modified,
                revisions=tuple(r.commit_hash for r in revisions), snapshot=snapshot))
        return sorted(models, key=lambda m: (-m.size_bytes, m.repo_id))
    except Exception:  # a broken cache must not break the model store
        log.warning("could not read the Hugging Face cache", exc_info=True)
        return []


def remove_cached(repo_id: str) -> int:
    """Delete ``repo_id`` (all its revisions and partial downloads) from the cache; return the bytes freed."""
    folder = _repo_folder(repo_id) if _valid(repo_id) else None
    if folder is None or not folder.is_dir():
        raise ModelNotFoundError(f"{repo_id} is not in the Hugging Face cache ({hub_cache_dir()}).",
                                 hint="It may have been removed already; refresh the list of models.")
    from desktop.models.store import disk_size

    freed = disk_size(folder)  # links count nothing: a snapshot's link frees nothing of its blob
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        raise StudioloError(f"Could not delete {repo_id} from the cache: {exc}",
                            hint="Close programs that may be using the model, then try again.") from exc
    shutil.rmtree(hub_cache_dir() / ".locks" / folder.name, ignore_errors=True)
    return freed
