"""Demo models: each generator's tiny offline model, built once into Studiolo's data folder."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from desktop import paths
from desktop.api import Generator, ModelNotFoundError, StudioloError


def demo_model_dir(generator: Generator) -> Path:
    """Where the generator's demo model lives (built or not). Versioned, so a new plugin version rebuilds it."""
    return paths.data_dir() / "models" / "demo" / generator.id / generator.version


def ensure_demo_model(generator: Generator, build: Callable[[Path], None] | None = None) -> Path:
    """The generator's demo model folder, built first if needed (in a temporary folder moved into place, so an
    interrupted build leaves nothing that looks finished). ``build(folder)`` builds it (default: the generator's
    ``build_demo_model`` in this process; the engine passes its runner's, which builds in the worker process)."""
    dest = demo_model_dir(generator)
    if dest.is_dir():
        return dest
    if not generator.has_demo_model:
        raise ModelNotFoundError(f"{generator.name} has no demo model.",
                                 hint="Choose a downloaded model or a local model file instead.")
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=dest.parent))
        (build or generator.build_demo_model)(tmp)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another builder did not win the race: a real error
                raise
    except StudioloError:
        raise
    except Exception as exc:
        full = _disk_full_error(exc, dest)
        if full is not None:  # the host's disk, not the plugin's bug
            raise full from exc
        raise StudioloError(f"Building the demo model of {generator.name} failed: {exc}",
                            hint="This is a bug in the plugin; see the log for details.") from exc
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _disk_full_error(exc: BaseException, dest: Path) -> StudioloError | None:
    """The error to show when building failed because the disk is full: an ``OSError`` saying so anywhere in the
    chain of exceptions (libraries wrap them), or no free space left where the model is built. None otherwise."""
    from desktop.destinations import DISK_FULL_ERRNOS, write_error

    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in DISK_FULL_ERRNOS:
            return write_error(seen, dest, what="the demo model")
        seen = seen.__cause__ or seen.__context__
    folder = next((p for p in (dest, *dest.parents) if p.is_dir()), None)
    if folder is not None and shutil.disk_usage(folder).free == 0:
        return write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), dest, what="the demo model")
    return None
