"""How a generator describes the models it can use, and the options a model is loaded with."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ModelSource", "RecommendedModel", "AddonKind", "LoadOptions"]

DEMO_MODEL = "demo"
"""The model reference that names a generator's demo model (built by ``build_demo_model``)."""


class ModelSource:
    """The forms of model reference a generator accepts (``Generator.model_sources``)."""

    HUB = "hub"  #: a Hugging Face hub repo id, e.g. ``stabilityai/sd-turbo``
    FOLDER = "folder"  #: a local folder (e.g. a diffusers or transformers ``save_pretrained`` folder)
    FILE = "file"  #: a single local file (e.g. a ``.safetensors`` checkpoint)
    DEMO = "demo"  #: the generator's demo model
    #: (API 0.2.5) a model on a configured server, ``remote://SERVER/MODEL-ID`` (:mod:`desktop.api.remote`); not in
    #: ``ALL``: a generator that runs its jobs remotely declares it (``frozenset({ModelSource.REMOTE})``)
    REMOTE = "remote"
    ALL = frozenset({HUB, FOLDER, FILE, DEMO})


@dataclass(frozen=True)
class RecommendedModel:
    """A model the generator suggests to users (shown in the model manager before any download).

    ``size_bytes`` should come from the hub's metadata; when written by hand, put the date it was checked in
    ``size_checked`` (``"2026-11"``) so readers know how fresh it is.
    """

    ref: str
    name: str
    description: str = ""
    size_bytes: int | None = None
    size_checked: str | None = None
    license: str | None = None


@dataclass(frozen=True)
class AddonKind:
    """(API 0.2.2) A kind of extra model a generator's jobs use beside the one they load: ControlNets, upscalers,
    IP-Adapters, the depth estimator a preprocessor runs… A generator lists its kinds in ``Generator.addon_kinds``.

    Each kind gets the host's whole model handling, as a model list of its own: the model manager shows it ("Image
    (Stable Diffusion) · ControlNets") with its recommended models, downloads (resumable, cancellable), imports,
    removal and what is installed; ``studiolo models`` takes it as ``--for GENERATOR_ID+KIND_ID``. In a job,
    :meth:`~desktop.api.RunContext.addon_model` turns a reference the user gave (a local file or folder, an imported
    model's name, a hub repo id or file that was downloaded, or ``demo``) into local files — without downloading.

    Attributes:
        id: a short lowercase word naming the kind within its generator (``"controlnet"``); never change it.
        name: the human name of the models, plural (``"ControlNets"``).
        description: one sentence for the model manager.
        recommended_models: as ``Generator.recommended_models``, small and fast first.
        model_file_patterns: as ``Generator.model_file_patterns``: empty, a model is a folder or a whole hub repo;
            otherwise one file matching a pattern (``("*.safetensors",)``).
        has_demo: the generator builds a tiny demo model of this kind (``Generator.build_addon_demo``), which
            ``demo`` names.
    """

    id: str
    name: str
    description: str = ""
    recommended_models: tuple[RecommendedModel, ...] = ()
    model_file_patterns: tuple[str, ...] = ()
    has_demo: bool = False


class LoadOptions(Mapping[str, Any]):
    """The options ``Generator.load`` receives: the values of the params marked ``load_option=True``, read like a
    dict (``options["tiling"]``), plus what the host decides:

    * ``allow_pickle`` — the user allowed pickle-format weights (``.ckpt``, ``.pt``, ``.bin``). When false,
      load with ``use_safetensors=True`` and refuse pickle files with :class:`~desktop.api.ModelFormatError`.
    * ``model_ref`` — (API 0.2.5) for a model with no local files, a :data:`ModelSource.REMOTE` one (``load`` gets
      ``model_path=None``), its reference as the job names it (``remote://gpubox/llama``); None for every other.

    Load options are hashable and part of the model cache's key: the same model loaded with other options is
    another handle.
    """

    def __init__(self, values: Mapping[str, Any] | None = None, *, allow_pickle: bool = False,
                 model_ref: str | None = None) -> None:
        self._values = dict(values or {})
        self.allow_pickle = allow_pickle
        self.model_ref = model_ref

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def key(self) -> tuple:
        """A hashable identity of these options (for caches)."""
        return (self.allow_pickle, self.model_ref, tuple(sorted((k, _freeze(v)) for k, v in self._values.items())))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LoadOptions) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        return f"LoadOptions({self._values!r}, allow_pickle={self.allow_pickle}, model_ref={self.model_ref!r})"


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value
