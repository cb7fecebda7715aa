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
* :class:`PanelHost` / :class:`PanelStorage` — what a custom panel gets from the window (the Qt helpers for
  panels — ``ParamsForm``, ``JobFollower``, ``QtPanelHost``, ``FileDropMixin`` — are in
  :mod:`desktop.api.widgets`, which imports Qt and is imported on demand);
* :class:`ImageOutput`, :class:`TextOutput`, :class:`AudioOutput` — what generators return;
* the :class:`StudioloError` hierarchy — errors a person can act on;
* weight-file checks (:func:`check_model_files`, :func:`safetensors_header`, :func:`pickle_refused`), safe
  reading of a model's own files (:func:`read_json_object`, :func:`read_model_text`: never a pipe or a device,
  sizes checked first), a safe PNG text-chunk reader (:func:`png_text_chunks`) and safe WAV/FLAC tag readers
  (:func:`wav_chunk`, :func:`flac_comment`);
* atomic file writes (:func:`atomic_write_bytes`, :func:`atomic_write_json`) for drafts, presets and the like,
  and :func:`atomic_path` for a file a library writes by name (a converted model);
* the RAM free for new allocations (:func:`available_ram`), to check a load against before it starts;
* remote servers (:func:`remote_servers`, :class:`RemoteServer`, :class:`RemoteModel`, :class:`RemoteListing`,
  :func:`remote_ref`, :func:`parse_remote_ref`, :class:`ServerUnavailableError`): the OpenAI-compatible servers the
  user configured, for generators that run their jobs on them (``ModelSource.REMOTE``);
* variations (:func:`supports_variations`, :func:`vary_params`, :data:`VARY_SUBTLE`, :data:`VARY_STRONG`): the
  ``variation_seed``/``variation_strength`` convention that gets a generator "Vary subtle / strong";
* :data:`API_VERSION` — the plugin API's version.

The API is exactly the names in ``__all__`` (each documented where it is defined and in ``docs/plugins.md``;
``tests/test_api_surface.py`` fails when one is not), plus those of :mod:`desktop.api.widgets`. Anything else you
can reach in ``desktop.api``'s submodules is Studiolo's own and may change in any release.

Versioning: the plugin API follows semantic versioning through Studiolo's own version (``CHANGELOG.md`` lists every
change). Before 1.0 a minor release may break plugins, so declare ``studiolo>=0.2,<0.3`` in your package's
dependencies; from 1.0 on, ``studiolo>=1.N,<2``. pip refuses an incompatible plugin at install time and the host
checks again at load.

This module imports no Qt, torch or other heavy library.
"""

from __future__ import annotations

import pluggy

from desktop import __version__
from desktop.api.audio_tags import MAX_TAG_BLOCKS, MAX_TAG_BYTES, flac_comment, wav_chunk
from desktop.api.context import RunContext
from desktop.api.errors import (
    GenerationError,
    InsufficientMemoryError,
    JobCancelled,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
    StudioloError,
)
from desktop.api.files import atomic_path, atomic_write_bytes, atomic_write_json
from desktop.api.generator import Generator
from desktop.api.model_files import check_json_files, read_json_object, read_model_text
from desktop.api.models import AddonKind, LoadOptions, ModelSource, RecommendedModel
from desktop.api.outputs import AudioOutput, EncodedOutput, ImageOutput, Output, TextOutput
from desktop.api.panel import PanelHost, PanelStorage
from desktop.api.params import (
    ParamField,
    ParamSpec,
    fit_params,
    from_json,
    loose_number,
    param,
    prompt_field,
    schema,
    to_json,
    validate,
)
from desktop.api.png import png_text_chunks
from desktop.api.remote import (
    RemoteListing,
    RemoteModel,
    RemoteServer,
    ServerUnavailableError,
    parse_remote_ref,
    remote_ref,
    remote_servers,
)
from desktop.api.system import available_ram, resident_memory
from desktop.api.training import TrainingContext, TrainingKind, TrainingResult, file_manifest, training_files
from desktop.api.variations import VARY_STRONG, VARY_SUBTLE, supports_variations, vary_params
from desktop.api.watermarks import WatermarkCheck
from desktop.api.weights import (
    PICKLE_SUFFIXES,
    check_model_files,
    check_safetensors,
    is_pickle,
    pickle_refused,
    safetensors_header,
)

PROJECT_NAME = "studiolo"
"""The pluggy project name and the entry-point group plugins register under."""

API_VERSION = ".".join(__version__.split(".")[:2])
"""The plugin API's version (``MAJOR.MINOR``): Studiolo's own version without the patch number."""

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorator marking a function as a Studiolo hook implementation."""

__all__ = [
    "API_VERSION",
    "PROJECT_NAME",
    "hookimpl",
    "Generator",
    "RunContext",
    "PanelHost",
    "PanelStorage",
    "ModelSource",
    "RecommendedModel",
    "AddonKind",
    "LoadOptions",
    "ParamSpec",
    "ParamField",
    "param",
    "schema",
    "prompt_field",
    "validate",
    "to_json",
    "from_json",
    "fit_params",
    "loose_number",
    "Output",
    "ImageOutput",
    "TextOutput",
    "AudioOutput",
    "EncodedOutput",
    "WatermarkCheck",
    "TrainingKind",
    "TrainingContext",
    "TrainingResult",
    "training_files",
    "file_manifest",
    "resident_memory",
    "RemoteServer",
    "RemoteModel",
    "RemoteListing",
    "remote_servers",
    "remote_ref",
    "parse_remote_ref",
    "StudioloError",
    "ParamError",
    "ModelNotFoundError",
    "ModelFormatError",
    "InsufficientMemoryError",
    "GenerationError",
    "JobCancelled",
    "ServerUnavailableError",
    "PICKLE_SUFFIXES",
    "is_pickle",
    "pickle_refused",
    "safetensors_header",
    "check_safetensors",
    "check_model_files",
    "read_model_text",
    "read_json_object",
    "check_json_files",
    "png_text_chunks",
    "MAX_TAG_BYTES",
    "MAX_TAG_BLOCKS",
    "wav_chunk",
    "flac_comment",
    "atomic_path",
    "atomic_write_bytes",
    "available_ram",
    "atomic_write_json",
    "VARY_SUBTLE",
    "VARY_STRONG",
    "supports_variations",
    "vary_params",
]
