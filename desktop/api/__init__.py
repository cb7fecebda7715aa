"""``desktop.api``: the public plugin API of Studiolo — the only module a plugin imports from the host.

A plugin is a module (or package) registered under the ``studiolo`` entry-point group that implements hooks::

    from desktop.api import Generator, hookimpl

    class MyGenerator(Generator):
        ...

    @hookimpl
    def register_generators(register):
        register(MyGenerator())

What is here:

* :data:`hookimpl` — marks hook implementations (the hooks are listed in ``desktop.hookspecs``);
* :class:`Generator` — the base of every generator;
* :func:`param` and the schema helpers — typed parameters with defaults, ranges, choices and help;
* :class:`RunContext` — progress, previews, cancel, seed, device and the global-RNG hold during a job;
* :class:`PanelHost` / :class:`PanelStorage` — what a custom panel gets from the window;
* :class:`ImageOutput`, :class:`TextOutput`, :class:`AudioOutput` — what generators return;
* the :class:`StudioloError` hierarchy — errors a person can act on;
* weight-file checks (:func:`check_model_files`, :func:`safetensors_header`, :func:`pickle_refused`), safe
  reading of a model's own files (:func:`read_json_object`, :func:`read_model_text`: never a pipe or a device,
  sizes checked first), a safe PNG text-chunk reader (:func:`png_text_chunks`) and safe WAV/FLAC tag readers
  (:func:`wav_chunk`, :func:`flac_comment`);
* atomic file writes (:func:`atomic_write_bytes`, :func:`atomic_write_json`) for drafts, presets and the like;
* :data:`API_VERSION` — the plugin API's version.

Versioning: the plugin API follows semantic versioning through Studiolo's own version. Before 1.0 a minor
release may break plugins, so declare ``studiolo>=0.1,<0.2`` in your package's dependencies; from 1.0 on,
``studiolo>=1.N,<2``. pip refuses an incompatible plugin at install time and the host checks again at load.

This module imports no Qt, torch or other heavy library.
"""

from __future__ import annotations

import pluggy

from desktop import __version__
from desktop.api import (
    audio_tags,
    context,
    errors,
    files,
    generator,
    model_files,
    models,
    outputs,
    panel,
    params,
    png,
    weights,
)
from desktop.api.audio_tags import *  # noqa: F403  (each submodule's __all__ is part of the API)
from desktop.api.context import *  # noqa: F403
from desktop.api.errors import *  # noqa: F403
from desktop.api.files import *  # noqa: F403
from desktop.api.generator import *  # noqa: F403
from desktop.api.model_files import *  # noqa: F403
from desktop.api.models import *  # noqa: F403
from desktop.api.outputs import *  # noqa: F403
from desktop.api.panel import *  # noqa: F403
from desktop.api.params import *  # noqa: F403
from desktop.api.png import *  # noqa: F403
from desktop.api.weights import *  # noqa: F403

PROJECT_NAME = "studiolo"
"""The pluggy project name and the entry-point group plugins register under."""

API_VERSION = ".".join(__version__.split(".")[:2])
"""The plugin API's version (``MAJOR.MINOR``): Studiolo's own version without the patch number."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator marking a function as a Studiolo hook implementation."""

__all__ = ["API_VERSION", "PROJECT_NAME", "hookimpl"] + [
    name for module in (generator, context, panel, models, params, outputs, errors, weights, model_files, png,
                        audio_tags, files)
    for name in module.__all__
]
