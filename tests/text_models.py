"""A tiny causal language model for tests, built once per test session (import as ``from text_models import ...``).

* :func:`tiny_lm_dir` — the path of the text generator's demo model (a 2-layer GPT-2 with random weights, a
  byte-level BPE tokenizer and a chat template; 0.7 MB, about a second), built on first call into a session temp
  folder and reused after. Do not modify it: copy it first (``shutil.copytree``).

The session fixture ``tiny_lm`` is registered for every test by ``tests/conftest.py`` (``pytest_plugins``): ask
for it by name, do not import it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}


def tiny_lm_dir() -> Path:
    """The tiny language model's folder (built once per process)."""
    if "lm" not in _BUILT:
        from plugins.text.demo import build_tiny_lm

        root = Path(tempfile.mkdtemp(prefix="studiolo-text-models-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
        _BUILT["lm"] = build_tiny_lm(root / "tiny-lm")
    return _BUILT["lm"]


@pytest.fixture(scope="session")
def tiny_lm() -> Path:
    return tiny_lm_dir()
