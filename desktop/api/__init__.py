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
* :data:`API_VERSION` — the plugin API's version.

Versioning: the plugin API follows semantic versioning through Studiolo's own version. Before 1.0 a minor
release may break plugins, so declare ``studiolo>=0.1,<0.2`` in your package's dependencies; from 1.0 on,
``studiolo>=1.N,<2``. pip refuses an incompatible plugin at install time and the host checks again at load.

This module imports no Qt, torch or other heavy library.
"""

from __future__ import annotations

import pluggy

from desktop import __version__
from desktop.api.context import RunContext
from desktop.api.errors import (
    GenerationError,
    InsufficientMemoryError,
    JobCancelled,
    ModelError,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
    ParamSchemaError,
    PluginError,
    StudioloError,
)
from desktop.api.generator import GENERATOR_ID_PATTERN, Generator
from desktop.api.models import DEMO_MODEL, LoadOptions, ModelSource, RecommendedModel
from desktop.api.outputs import AudioOutput, ImageOutput, Output, TextOutput
from desktop.api.panel import PanelHost, PanelStorage
from desktop.api.params import (
    ParamField,
    ParamSpec,
    from_json,
    load_option_names,
    param,
    parse_assignments,
    parse_value,
    prompt_field,
    schema,
    to_json,
    validate,
    validate_value,
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
    # generators
    "Generator",
    "GENERATOR_ID_PATTERN",
    "RunContext",
    "PanelHost",
    "PanelStorage",
    # models
    "DEMO_MODEL",
    "LoadOptions",
    "ModelSource",
    "RecommendedModel",
    # params
    "param",
    "ParamSpec",
    "ParamField",
    "schema",
    "prompt_field",
    "load_option_names",
    "validate",
    "validate_value",
    "parse_value",
    "parse_assignments",
    "to_json",
    "from_json",
    # outputs
    "Output",
    "ImageOutput",
    "TextOutput",
    "AudioOutput",
    # errors
    "StudioloError",
    "ParamError",
    "ParamSchemaError",
    "ModelError",
    "ModelNotFoundError",
    "ModelFormatError",
    "InsufficientMemoryError",
    "GenerationError",
    "JobCancelled",
    "PluginError",
]
