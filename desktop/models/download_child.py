"""The worker process behind :func:`desktop.models.hub.download`: one hub download, killed to cancel.

Run as ``python -P download_child.py`` (by path, so it needs nothing from Studiolo; ``-P`` keeps this folder off
``sys.path``). It talks JSON lines:

* stdin, line 1: the request ``{repo_id, revision, token, endpoint, cache_dir, allow_patterns, ignore_patterns}``,
  optionally with ``required`` (paths that must be in the repo: one missing is an error of kind ``file_not_found``
  carrying the repo's ``files``) and ``list_only`` (only list the repo's files: one ``files`` event, then exit);
* stdout: ``{"event": "plan", ...}`` (what is left to download), then it waits for ``go`` on stdin, then
  ``progress`` events and a last ``done`` or ``error`` (``kind``, ``phase``, ``status``, ``detail``).

Everything it writes is safe to interrupt at any instruction (the parent cancels with a kill): see the
docstring of :mod:`desktop.models.hub`. It exits on its own if its stdin closes (the app went away).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

CHUNK_SIZE = 256 * 1024  # bytes per write: the granularity of progress and of what a kill can lose
REQUEST_TIMEOUT_S = 20.0  # bound for every request the library makes without its own timeout

_out_lock = threading.Lock()
_out = sys.stdout


def emit(event: str, **fields: Any) -> None:
    with _out_lock:
        _out.write(json.dumps({"event": event, **fields}) + "\n")
        _out.flush()


class CorruptDownload(OSError):
    """A resumed file does not match its hash: it was deleted."""


class FileNotInRepo(LookupError):
    """A file the request names is not in the repo (at that revision)."""

    def __init__(self, missing: list[str], files: list[str]) -> None:
        super().__init__(", ".join(missing))
        self.missing, self.files = missing, files


MAX_LISTED = 5000  # paths sent with a file_not_found error (a repo of more is rare; the message shows a few)


class Progress:
    """Bytes on disk for this snapshot: files complete before we started plus each file's current size."""

    def __init__(self, base: int, total: int, partial: dict[str, int]) -> None:
        self.base, self.total, self.files = base, total, dict(partial)
        self.lock = threading.Lock()

    def done(self) -> int:
        return self.base + sum(self.files.values())

    def update(self, filename: str, size: int) -> None:
        with self.lock:  # emit under the lock, so the parent sees the events in order
            self.files[filename] = size
            emit("progress", done=self.done(), total=self.total, file=filename)


PROGRESS = Progress(0, 0, {})


class _ReportingFile:
    """The file ``http_get`` writes to: reports the size *after* each chunk reached the OS, so a kill right
    after a progress event still finds those bytes in the ``.incomplete`` file."""

    def __init__(self, f: Any, filename: str) -> None:
        self._f, self._filename = f, filename

    def write(self, data: bytes) -> int:
        n = self._f.write(data)
        self._f.flush()
        PROGRESS.update(self._filename, self._f.tell())
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def _hash_matches(path: Path, etag: str | None) -> bool:
    """Whether the file has the content its etag names (sha256 for LFS files, git blob sha1 otherwise)."""
    etag = (etag or "").lower()
    if len(etag) == 64:
        digest = hashlib.sha256()
    elif len(etag) == 40:
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        return True  # not a content hash: nothing to check against
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
            if f.tell() % (64 << 20) == 0:
                emit("heartbeat")  # hashing gigabytes takes a while: tell the parent we are not stuck
    return digest.hexdigest() == etag


def resumable_download_to_tmp_and_move(
    *, incomplete_path: Path, destination_path: Path, url_to_download: str, headers: dict[str, str],
    expected_size: int | None, filename: str, force_download: bool, etag: str | None, xet_file_data: Any,
    tqdm_class: Any = None, **_: Any,
) -> None:
    """Stands in for huggingface_hub's ``_download_to_tmp_and_move``: same contract, but the partial file is
    ``<blob>.incomplete`` (named by the blob's hash) and is kept on failure, so the next run resumes it with
    an HTTP Range request. The blob lock the library holds around this call keeps writers to one at a time."""
    from huggingface_hub import file_download as fd

    if destination_path.exists() and not force_download:
        return
    incomplete = Path(incomplete_path)
    if force_download:
        incomplete.unlink(missing_ok=True)
    discard = False
    with incomplete.open("ab") as f:
        resumed = f.tell()
        if expected_size is not None and resumed > expected_size:  # cannot be a prefix: start over
            f.seek(0)
            f.truncate()
            resumed = 0
        PROGRESS.update(filename, resumed)
        try:
            fd.http_get(url_to_download, _ReportingFile(f, filename), resume_size=resumed, headers=headers,
                        expected_size=expected_size, displayed_filename=filename)
        except OSError as exc:  # HTTP errors are OSErrors too: keep the prefix unless it cannot be one
            too_long = expected_size is not None and f.tell() > expected_size
            discard = too_long or exc.errno == errno.ENOSPC
            raise
        finally:
            if discard:
                f.close()
                incomplete.unlink(missing_ok=True)
    if resumed and not _hash_matches(incomplete, etag):
        incomplete.unlink(missing_ok=True)
        raise CorruptDownload(f"{filename} did not match its checksum after resuming")
    getattr(fd, "_chmod_and_move", lambda src, dst: os.replace(src, dst))(incomplete, Path(destination_path))


def _install_hooks() -> None:
    """Resumable partial files, small chunks, and a timeout on every request."""
    from huggingface_hub import constants
    from huggingface_hub import file_download as fd
    from huggingface_hub.utils import get_session

    if not hasattr(fd, "_download_to_tmp_and_move") or not hasattr(fd, "http_get"):
        raise RuntimeError("this huggingface_hub version is not supported (no _download_to_tmp_and_move)")
    fd._download_to_tmp_and_move = resumable_download_to_tmp_and_move
    constants.DOWNLOAD_CHUNK_SIZE = CHUNK_SIZE

    def bound_timeouts(request: Any) -> None:
        given = dict(request.extensions.get("timeout") or {})
        bounded = {k: REQUEST_TIMEOUT_S if given.get(k) is None else given[k]
                   for k in ("connect", "read", "write", "pool")}
        request.extensions = {**request.extensions, "timeout": bounded}

    session = get_session()
    hooks = session.event_hooks
    hooks["request"].append(bound_timeouts)
    session.event_hooks = hooks


def make_plan(req: dict[str, Any]) -> dict[str, Any]:
    """Resolve the revision, list the files and measure what is already on disk."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile
    from huggingface_hub.utils import filter_repo_objects

    api = HfApi(endpoint=req["endpoint"], token=req["token"])
    commit = api.model_info(req["repo_id"], revision=req["revision"], timeout=REQUEST_TIMEOUT_S).sha
    if not commit:
        raise RuntimeError("the hub did not say which commit the revision is")
    files = {f.path: f for f in api.list_repo_tree(req["repo_id"], recursive=True, revision=commit)
             if isinstance(f, RepoFile)}
    missing = [path for path in req.get("required") or () if path not in files]
    if missing:
        raise FileNotInRepo(missing, sorted(files)[:MAX_LISTED])
    if req.get("list_only"):
        return {"commit": commit, "listing": [[f.path, f.size] for f in sorted(files.values(), key=lambda f: f.path)]}
    wanted = list(filter_repo_objects(files, allow_patterns=req["allow_patterns"],
                                      ignore_patterns=req["ignore_patterns"]))
    storage = Path(req["cache_dir"]) / ("models--" + req["repo_id"].replace("/", "--"))
    base = total = to_download = 0
    partial: dict[str, int] = {}
    for path in wanted:
        f = files[path]
        etag = f.lfs.sha256 if f.lfs is not None else f.blob_id
        blob = storage / "blobs" / etag
        total += f.size
        if (storage / "snapshots" / commit / path).exists() or blob.exists():
            base += f.size
            continue
        have = blob.with_name(etag + ".incomplete")
        size = have.stat().st_size if have.exists() else 0
        if 0 < size <= f.size:
            partial[path] = size
        to_download += f.size - partial.get(path, 0)
    return {"commit": commit, "files": len(wanted), "total": total, "to_download": to_download,
            "done": base + sum(partial.values()), "base": base, "partial": partial, "storage": str(storage)}


def _write_ref(storage: Path, revision: str, commit: str) -> None:
    """Point ``refs/<revision>`` at the commit, atomically (only once the snapshot is complete)."""
    if revision == commit:
        return
    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f"{ref.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def classify(exc: BaseException) -> dict[str, Any]:
    """What went wrong, in terms the parent turns into a message for a person."""
    import httpx2
    from huggingface_hub import errors as hf

    seen: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and e not in seen:
        seen.append(e)
        e = e.__cause__ or e.__context__
    for e in seen:
        if isinstance(e, CorruptDownload):
            return {"kind": "corrupt", "detail": str(e)}
        if isinstance(e, FileNotInRepo):
            return {"kind": "file_not_found", "detail": str(e), "missing": e.missing, "files": e.files}
        if isinstance(e, hf.OfflineModeIsEnabled):
            return {"kind": "offline", "detail": str(e)}
        if isinstance(e, hf.RevisionNotFoundError):
            return {"kind": "revision_not_found", "detail": str(e)}
        if isinstance(e, hf.HfHubHTTPError) and getattr(e, "response", None) is not None:
            status = e.response.status_code
            if isinstance(e, hf.GatedRepoError) or status in (401, 403):
                return {"kind": "auth", "status": status, "detail": str(e).splitlines()[0]}
            if status == 404 and isinstance(e, hf.RepositoryNotFoundError):
                return {"kind": "not_found", "status": status, "detail": str(e).splitlines()[0]}
            return {"kind": "http", "status": status, "detail": f"the server answered HTTP {status}"}
        if isinstance(e, httpx2.TransportError):
            return {"kind": "network", "detail": f"{type(e).__name__}: {e}" if str(e) else type(e).__name__}
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            return {"kind": "disk_full", "detail": str(e)}
    return {"kind": "other", "detail": f"{type(exc).__name__}: {exc}"}


def _exit_when_parent_goes() -> None:
    sys.stdin.readline()  # nothing more is sent after "go": this returns at EOF, when the parent is gone
    os._exit(3)


def main() -> int:
    global _out, PROGRESS
    _out = os.fdopen(os.dup(1), "w", encoding="utf-8")  # events only; anything else printed goes to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    phase = "plan"
    try:
        req = json.loads(sys.stdin.readline())
        _install_hooks()
        plan = make_plan(req)
        if req.get("list_only"):
            emit("files", commit=plan["commit"], files=plan["listing"])
            return 0
        emit("plan", **{k: plan[k] for k in ("commit", "files", "total", "to_download", "done")})
        if sys.stdin.readline().strip() != "go":
            return 0
        threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
        phase = "download"
        PROGRESS = Progress(plan["base"], plan["total"], plan["partial"])
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(
            req["repo_id"], revision=plan["commit"], cache_dir=req["cache_dir"], endpoint=req["endpoint"],
            token=req["token"], allow_patterns=req["allow_patterns"], ignore_patterns=req["ignore_patterns"]))
        path.mkdir(parents=True, exist_ok=True)  # a snapshot with no matching file is still a snapshot
        _write_ref(Path(plan["storage"]), req["revision"], plan["commit"])
        emit("progress", done=plan["total"], total=plan["total"], file="")
        emit("done", path=str(path), commit=plan["commit"])
        return 0
    except BaseException as exc:  # everything is reported to the parent
        import traceback

        traceback.print_exc()
        emit("error", phase=phase, **classify(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
