"""Add-on models (``Generator.addon_kinds``): each kind of a generator as a model list of its own, and finding an
add-on's files during a job.

The model machinery (inventory, downloads, imports, usage, the model manager, ``studiolo models``) works on
generators: what models they recommend, which file patterns make a model, how their demo model is built. An add-on
kind is given to it as an :class:`AddonModels`, a :class:`~desktop.api.Generator` that only describes models
(``id`` ``GENERATOR_ID+KIND_ID``; it never loads or generates), so every part of it serves add-ons unchanged.

:func:`resolve_addon` is what :meth:`desktop.api.RunContext.addon_model` runs: a reference to local files,
offline. A job never downloads an add-on (its progress bar is the job's, and a ControlNet download in the middle
of a picture is not what anyone asked for): a model not here is refused naming where to download it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from desktop.api import AddonKind, Generator, ModelNotFoundError, ModelSource
from desktop.api.weights import PICKLE_SUFFIXES, check_model_files, is_pickle, pickle_refused
from desktop.models import usage
from desktop.models.demo import ensure_demo_model
from desktop.models.resolver import matches_patterns, parse_ref

SEPARATOR = "+"
"""Between a generator's id and a kind's id in an add-on list's id (``image.diffusers+controlnet``)."""


class AddonModels(Generator):
    """The models of one add-on kind of ``owner``, shaped as a generator for the model machinery (see the module
    docstring). ``load``/``generate`` are never called on it."""

    def __init__(self, owner: Generator, kind: AddonKind) -> None:
        self.owner = owner
        self.addon = kind
        self.id = f"{owner.id}{SEPARATOR}{kind.id}"  # type: ignore[misc]  # instance values of the ClassVars
        self.name = f"{owner.name} · {kind.name}"  # type: ignore[misc]
        self.kind = "addon"  # type: ignore[misc]
        self.version = owner.version  # type: ignore[misc]
        self.description = kind.description  # type: ignore[misc]
        self.recommended_models = tuple(kind.recommended_models)  # type: ignore[misc]
        self.model_file_patterns = tuple(kind.model_file_patterns)  # type: ignore[misc]
        self.default_model = None  # type: ignore[misc]
        sources = set(ModelSource.ALL) - (set() if kind.has_demo else {ModelSource.DEMO})
        self.model_sources = frozenset(sources)  # type: ignore[misc]

    @property
    def has_demo_model(self) -> bool:
        return self.addon.has_demo

    def build_demo_model(self, dest: Path) -> None:
        self.owner.build_addon_demo(self.addon.id, dest)

    def __repr__(self) -> str:
        return f"<add-on models {self.id}>"


def addon_lists(generator: Generator) -> list[AddonModels]:
    """One :class:`AddonModels` per add-on kind of ``generator`` (none for a generator without add-ons). A
    malformed ``addon_kinds`` (a plugin's bug) gives none rather than breaking the model manager."""
    kinds = getattr(generator, "addon_kinds", ())
    if not isinstance(kinds, (tuple, list)):
        return []
    return [AddonModels(generator, kind) for kind in kinds if isinstance(kind, AddonKind)]


def model_lists(generators: Iterable[Generator]) -> Iterator[Generator]:
    """Every model list of ``generators``: each generator, followed by its add-on kinds' lists."""
    for generator in generators:
        yield generator
        yield from addon_lists(generator)


def addon_list(generator: Generator, kind: str) -> AddonModels:
    """The model list of ``generator``'s add-on kind ``kind``; :class:`ModelNotFoundError` for a kind it has not."""
    for models in addon_lists(generator):
        if models.addon.id == kind:
            return models
    known = ", ".join(k.id for k in getattr(generator, "addon_kinds", ())) or "none"
    raise ModelNotFoundError(f"{generator.name} has no add-on models of the kind {kind!r}.",
                             hint=f"Its kinds: {known}. (A bug in the plugin if it asked for this kind.)")


def resolve_addon(generator: Generator, kind: str, ref: str, *, allow_pickle: bool = False,
                  build_demo: Any = None) -> Path:
    """The local files of the add-on model ``ref`` (see :meth:`desktop.api.RunContext.addon_model`), offline.
    Records the use under the kind's list, so the model manager lists the model for it."""
    from desktop.models import hub

    models = addon_list(generator, kind)
    text = str(ref).strip()
    try:
        parsed = parse_ref(text)
    except ModelNotFoundError as exc:  # name the kind: a job may use several
        raise ModelNotFoundError(f"{exc.message.rstrip('.')} ({models.addon.name}).", hint=exc.hint) from None
    if parsed.source not in models.model_sources:
        raise ModelNotFoundError(f"{models.addon.name} of {generator.name} cannot be given as {parsed.source} "
                                 f"({text}).", hint="Give a local file or folder, or a downloaded hub model.")
    if parsed.source == ModelSource.DEMO:
        path = ensure_demo_model(models, build_demo)
        usage.note_use(models.id, text)
        return _single_file(path, models) if models.model_file_patterns else path
    if parsed.source == ModelSource.HUB:
        if parsed.filename is not None:
            if is_pickle(Path(parsed.filename)) and not allow_pickle:
                raise pickle_refused(Path(parsed.filename))
            found = hub.cached_file(parsed.value, parsed.filename, parsed.revision)
        else:
            ignore = None if allow_pickle else [f"*{suffix}" for suffix in PICKLE_SUFFIXES]
            found = hub.cached_snapshot(parsed.value, parsed.revision, ignore_patterns=ignore)
            if found is not None and models.model_file_patterns:
                found = _single_file(found, models)
        if found is None:
            raise ModelNotFoundError(
                f"The model {text} ({models.addon.name}) is not downloaded.",
                hint=f"Download it on the Models page ({models.name}) or with `studiolo models pull {text} "
                     f"--for {models.id}`; jobs do not download add-on models.")
        path = Path(found)
    else:
        path = parsed.path
        if models.model_file_patterns and path.is_file() and not matches_patterns(path.name,
                                                                                  models.model_file_patterns):
            raise ModelNotFoundError(f"{path.name} cannot be one of the {models.addon.name}: "
                                     f"{' or '.join(models.model_file_patterns)} files can.",
                                     hint=f"Choose a {' or '.join(models.model_file_patterns)} file.")
    check_model_files(path, allow_pickle=allow_pickle)
    usage.note_use(models.id, text)
    return path


def _single_file(folder: Path, models: AddonModels) -> Path:
    """The one file of ``folder`` (a demo folder or a hub snapshot) matching the kind's patterns."""
    if folder.is_file():
        return folder
    found = sorted(p for p in folder.rglob("*") if p.is_file() and matches_patterns(p.name,
                                                                                      models.model_file_patterns))
    if len(found) != 1:
        names = ", ".join(p.name for p in found[:10]) or "none"
        raise ModelNotFoundError(f"{folder.name} holds {len(found)} {' or '.join(models.model_file_patterns)} "
                                 f"files ({names}); a model of {models.addon.name} is one file.",
                                 hint="Give the file itself (org/name/FILE for a hub repo).")
    return found[0]
