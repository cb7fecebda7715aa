"""The first run: is there any model on this machine yet, what could be downloaded, and building every demo model.

No Qt here: the welcome page (``desktop.ui.welcome``) runs :func:`build_all_demos` and :func:`download_models` on
a worker thread and shows what they report. :func:`needs_first_run` is meant for the GUI thread at start: it only
lists a few folders (no hashing, no reading of files, no import of huggingface_hub).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from desktop.api import Generator, RecommendedModel, StudioloError
from desktop.api.errors import JobCancelled
from desktop.engine.memory import human_bytes
from desktop.models.demo import ensure_demo_model
from desktop.models.modelless import uses_local_model
from desktop.models.resolver import imported_models_dir
from desktop.models.store import demo_models_dir

if TYPE_CHECKING:
    from desktop.plugins import PluginManager
    from desktop.settings import Settings

log = logging.getLogger(__name__)

DemoProgressFn = Callable[[int, int, str], None]  # generators done, generators in all, the one being built
DemoBuilderFn = Callable[[Generator], Callable[[Path], None]]  # a generator -> what builds its demo into a folder
DownloadProgressFn = Callable[[int, int, int, "int | None", str], None]  # model index, models, bytes, total, text


@dataclass(frozen=True)
class Offer:
    """One generator's recommended downloads, as the welcome page lists them."""

    generator_id: str
    generator_name: str
    kind: str
    models: tuple[RecommendedModel, ...]

    @property
    def total_bytes(self) -> int:
        """The known sizes added up (a model without a size counts 0)."""
        return total_bytes(self.models)


def total_bytes(models: Iterable[RecommendedModel]) -> int:
    """The sum of the known sizes of ``models``, each repo counted once."""
    seen: dict[str, int] = {}
    for model in models:
        seen.setdefault(model.ref, model.size_bytes or 0)
    return sum(seen.values())


def size_text(n: int | None) -> str:
    """A size as the rest of Studiolo writes it (the model manager, ``studiolo models list``): ``1.5 GB``;
    ``?`` when unknown."""
    return "?" if n is None else human_bytes(n)


# -- is this the first run? ------------------------------------------------------------------------------------


def _has_visible_entry(folder: Path, *, depth: int = 1) -> bool:
    """Whether ``folder`` holds a non-hidden entry ``depth`` levels down (a listing, nothing read)."""
    try:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:  # missing or unreadable: nothing there
        return False
    if depth <= 1:
        return bool(entries)
    return any(p.is_dir() and _has_visible_entry(p, depth=depth - 1) for p in entries)


def _hub_has_model() -> bool:
    """Whether the Hugging Face cache holds a model repo with at least one finished download (a ``refs/`` entry:
    huggingface_hub and Studiolo write it only once a snapshot is complete)."""
    from desktop.models.hub import hub_cache_dir  # light: hub imports huggingface_hub only inside functions

    try:
        repos = [p for p in hub_cache_dir().iterdir() if p.name.startswith("models--")]
    except OSError:
        return False
    return any(_has_visible_entry(repo / "refs") for repo in repos)


def has_any_model() -> bool:
    """Whether any model is on this machine: a demo model built, a model imported, or a hub model downloaded."""
    return (_has_visible_entry(demo_models_dir(), depth=2) or _has_visible_entry(imported_models_dir())
            or _hub_has_model())


def needs_first_run(plugins: PluginManager, settings: Settings) -> bool:
    """Whether to show the welcome page: the user has not been through it, no model at all is installed, and some
    generator has something to offer (a demo model or a recommended download). Cheap: a few folder listings."""
    if settings.first_run_done:
        return False
    if not any(g.has_demo_model or g.recommended_models for g in plugins.generators.values()):
        return False
    return not has_any_model()


def mark_done(settings: Settings) -> None:
    """Remember that the welcome page was dealt with (saved at once)."""
    settings.first_run_done = True
    settings.save()


def generators_by_need(plugins: PluginManager) -> tuple[list[Generator], list[Generator]]:
    """The generators that need a model on this machine and the others — those that use none, and those whose models
    are on remote servers (:func:`~desktop.models.modelless.uses_local_model`: they work without the first run), each
    list ordered by kind then name, as the sidebar shows them."""
    ordered = sorted(plugins.generators.values(), key=lambda g: (g.kind, g.name))
    return [g for g in ordered if uses_local_model(g)], [g for g in ordered if not uses_local_model(g)]


# -- what can be downloaded -------------------------------------------------------------------------------------


def offered_downloads(plugins: PluginManager) -> list[Offer]:
    """Every generator's recommended models (in the generator's order: small and fast first), generators ordered
    by kind then name, as the sidebar shows them. Generators that recommend nothing are left out."""
    offers = []
    for generator in sorted(plugins.generators.values(), key=lambda g: (g.kind, g.name)):
        if generator.recommended_models:
            offers.append(Offer(generator.id, generator.name, generator.kind, tuple(generator.recommended_models)))
    return offers


# -- doing it ----------------------------------------------------------------------------------------------------


def _demo_generators(plugins: PluginManager) -> list[Generator]:
    return [g for g in sorted(plugins.generators.values(), key=lambda g: (g.kind, g.name)) if g.has_demo_model]


def build_all_demos(plugins: PluginManager, on_progress: DemoProgressFn, cancel: threading.Event, *,
                    builder: DemoBuilderFn | None = None) -> list[str]:
    """Build every generator's demo model, one after another (a demo already built is kept as it is).

    ``on_progress(done, total, generator name)`` is called before each build and once at the end (with an empty
    name). Returns the failures as messages for a person; a generator whose demo fails does not stop the others.
    Stops before the next generator once ``cancel`` is set (check it to tell a cancelled run from a finished one).
    Call it on a worker thread. ``builder(generator)`` gives the function that builds a generator's demo into a
    folder (the engine's: in the generator's worker process, so the heavy libraries are imported there); by default
    each is built in this process.
    """
    generators = _demo_generators(plugins)
    failures: list[str] = []
    for index, generator in enumerate(generators):
        if cancel.is_set():
            return failures
        on_progress(index, len(generators), generator.name)
        try:
            ensure_demo_model(generator, builder(generator) if builder is not None else None)
        except StudioloError as exc:
            log.warning("the demo model of %s could not be built: %s", generator.id, exc, exc_info=True)
            failures.append(f"{generator.name}: {exc}")
        except Exception as exc:  # ensure_demo_model wraps plugin errors; this is a last resort
            log.exception("building the demo model of %s failed", generator.id)
            failures.append(f"{generator.name}: the demo model could not be built ({type(exc).__name__}: {exc}).\n"
                            "This is a bug in the plugin; the log has the details.")
    on_progress(len(generators), len(generators), "")
    return failures


def download_models(models: Sequence[RecommendedModel], on_progress: DownloadProgressFn, cancel: threading.Event,
                    *, token: str | None = None, allow_pickle: bool = False) -> list[str]:
    """Download ``models`` from the Hugging Face hub one after another, as a job would (pickle files left out
    unless ``allow_pickle``, so the job finds them in the cache).

    ``on_progress(model index, models, bytes done, bytes total or None, message)``. Returns the failures as
    messages for a person; one model failing does not stop the next. Once ``cancel`` is set the current download
    stops (what arrived is kept: the next try resumes) and no other starts. Call it on a worker thread.
    """
    from desktop.models import hub
    from desktop.models.inventory import pickle_ignore_patterns
    from desktop.models.resolver import split_hub_file

    ignore = pickle_ignore_patterns(allow_pickle)
    failures: list[str] = []
    unique = list({m.ref: m for m in models}.values())
    for index, model in enumerate(unique):
        if cancel.is_set():
            break

        def progress(done: int, total: int | None, message: str, index: int = index) -> None:
            on_progress(index, len(unique), done, total, message)

        progress(0, model.size_bytes, model.name)
        one_file = split_hub_file(model.ref)  # one file of a repo (a GGUF quantisation): only that file
        try:
            if one_file is not None:
                hub.download_file(one_file[0], one_file[1], revision=one_file[2], token=token, cancel=cancel,
                                  on_progress=progress)
            else:
                hub.download(model.ref, token=token, cancel=cancel, on_progress=progress, ignore_patterns=ignore)
        except JobCancelled:
            break
        except StudioloError as exc:
            log.warning("first-run download of %s failed: %s", model.ref, exc)
            failures.append(f"{model.name} ({model.ref}): {exc}")
        except Exception as exc:  # a download must never take the page down
            log.exception("first-run download of %s failed", model.ref)
            failures.append(f"{model.name} ({model.ref}): the download failed ({type(exc).__name__}: {exc}).\n"
                            "Try again later; the log has the details.")
    return failures
