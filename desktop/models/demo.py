"""Demo models: each generator's tiny offline model, built once into Studiolo's data folder."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from desktop import paths
from desktop.api import Generator, ModelNotFoundError, StudioloError


def demo_model_dir(generator: Generator) -> Path:
    """Where the generator's demo model lives (built or not). Versioned, so a new plugin version rebuilds it."""
    return paths.data_dir() / "models" / "demo" / generator.id / generator.version


def ensure_demo_model(generator: Generator) -> Path:
    """The generator's demo model folder, built first if needed (in a temporary folder moved into place, so an
    interrupted build leaves nothing that looks finished)."""
    dest = demo_model_dir(generator)
    if dest.is_dir():
        return dest
    if not generator.has_demo_model:
        raise ModelNotFoundError(f"{generator.name} has no demo model.",
                                 hint="Choose a downloaded model or a local model file instead.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".building-", dir=dest.parent))
    try:
        generator.build_demo_model(tmp)
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another builder did not win the race: a real error
                raise
    except StudioloError:
        raise
    except Exception as exc:
        raise StudioloError(f"Building the demo model of {generator.name} failed: {exc}",
                            hint="This is a bug in the plugin; see the log for details.") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
