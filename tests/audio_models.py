"""Tiny audio models for tests, built once per test session (import as ``from audio_models import ...``).

* :func:`tiny_vits_dir` — the speech generator's demo model (a 2-layer VITS with random weights and a ~45-character
  tokenizer, 16 kHz; 0.7 MB, about a second).
* :func:`tiny_musicgen_dir` — the music generator's demo model (a tiny T5 + Encodec with 3 codebooks at 50 frames a
  second + a 2-layer decoder, 16 kHz, at most 2.5 s — 128 positions, fewer than the demo's; 1 MB, about a second).

Each is built on first call into a session temp folder and reused after. Do not modify them: copy first
(``shutil.copytree``). The session fixtures ``tiny_vits`` / ``tiny_musicgen`` are registered for every test by
``tests/conftest.py`` (``pytest_plugins``): ask for them by name, do not import them.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest

_BUILT: dict[str, Path] = {}


def _root() -> Path:
    if "root" not in _BUILT:
        _BUILT["root"] = Path(tempfile.mkdtemp(prefix="studiolo-audio-models-"))
        atexit.register(shutil.rmtree, _BUILT["root"], ignore_errors=True)
    return _BUILT["root"]


def tiny_vits_dir() -> Path:
    """The tiny VITS model's folder (built once per process)."""
    if "vits" not in _BUILT:
        from plugins.audio.demo import build_tiny_vits

        _BUILT["vits"] = build_tiny_vits(_root() / "tiny-vits")
    return _BUILT["vits"]


def tiny_musicgen_dir() -> Path:
    """The tiny MusicGen model's folder (built once per process)."""
    if "musicgen" not in _BUILT:
        from plugins.audio.demo import build_tiny_musicgen

        _BUILT["musicgen"] = build_tiny_musicgen(_root() / "tiny-musicgen", max_positions=128)
    return _BUILT["musicgen"]


@pytest.fixture(scope="session")
def tiny_vits() -> Path:
    return tiny_vits_dir()


@pytest.fixture(scope="session")
def tiny_musicgen() -> Path:
    return tiny_musicgen_dir()
