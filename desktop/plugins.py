"""The plugin manager: find plugins by entry point, load each on its own, collect their generators.

Built-in generators and third-party ones take the same path: an entry point in the ``studiolo`` group. Every
entry point is imported on its own and every hook implementation is called on its own, so a plugin that fails —
it does not import, it needs another Studiolo, its hook raises, it registers a malformed or duplicate generator —
is recorded as failed with its traceback, and every other plugin keeps working. (pluggy's own
``load_setuptools_entrypoints`` and hook calls stop at the first failure; we do not use them for that reason.)

Which plugins load: all of them, except those the user disabled (persisted in the settings), those whose import
stopped an earlier Studiolo (see below) and, when the ``STUDIOLO_LOAD_PLUGINS`` variable is set (a comma list;
empty means none), third-party plugins not named in it.

A plugin cannot take start-up down (:mod:`desktop.plugin_import`, :mod:`desktop.plugin_journal`): each import is
journaled, runs on its own thread and is waited for at most ``STUDIOLO_PLUGIN_IMPORT_TIMEOUT`` seconds (default
30, 0 for no bound; a plugin still importing then is skipped and listed as failed); anything it raises is a failure;
what it prints goes to stderr; an import slower than ``STUDIOLO_PLUGIN_SLOW_IMPORT`` seconds (default 2) is
reported with its time.
A third-party plugin whose import never finished in an earlier process (it called ``os._exit()``, crashed, hung
until killed) is skipped and listed as failed — "Studiolo stopped while loading this plugin" — until the user
enables it again (``studiolo plugins enable NAME`` or *Enable* on the Plugins page).

Built-in plugins are journaled the same way but never skipped: they are part of Studiolo, whose generators would be
gone for good with no plugin of the user's to blame; a mark left by one is reported as a warning and cleared.

The window loads in two steps (:meth:`PluginManager.load` with ``third_party=False``, then :meth:`import_pending`
on a worker and :meth:`finish_import` on the GUI thread for each of :meth:`pending`), so that it is on screen while
third-party plugins import; the CLI loads everything at once with :meth:`PluginManager.load`.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from desktop import __version__, hookspecs
from desktop.api import PROJECT_NAME, Generator, RecommendedModel
from desktop.api.errors import PluginError
from desktop.api.generator import GENERATOR_ID_PATTERN
from desktop.api.params import schema
from desktop.plugin_import import Clock, PluginImport, one_line, plugin_output_to_stderr
from desktop.plugin_journal import LoadJournal, Mark
from desktop.settings import Settings

log = logging.getLogger(__name__)

ALLOW_ENV = "STUDIOLO_LOAD_PLUGINS"
TIMEOUT_ENV = "STUDIOLO_PLUGIN_IMPORT_TIMEOUT"
SLOW_ENV = "STUDIOLO_PLUGIN_SLOW_IMPORT"
IMPORT_TIMEOUT_S = 30.0  # how long a plugin's import is waited for
SLOW_IMPORT_S = 2.0  # an import slower than this is reported with its time
DISTRIBUTION = "studiolo"
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
HEAVY_MODULES = ("torch", "diffusers", "transformers", "tensorflow", "jax")


class Status:
    LOADED = "loaded"
    DISABLED = "disabled"
    FAILED = "failed"
    SKIPPED = "skipped"  # not named in STUDIOLO_LOAD_PLUGINS
    LOADING = "loading"  # still to be imported (the window imports third-party plugins after it shows)


@dataclass
class PluginRecord:
    """What the host knows about one plugin (one entry point)."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    summary: str | None = None
    author: str | None = None
    builtin: bool = False
    status: str = Status.LOADED
    error: str | None = None
    traceback: str | None = None
    generators: list[str] = field(default_factory=list)
    hooks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    import_seconds: float | None = None  # how long its import took (or had taken when Studiolo stopped waiting)
    quarantined: bool = False  # skipped: its import stopped an earlier Studiolo; enabling it clears that

    def fail(self, error: str, tb: str | None = None) -> None:
        self.status, self.error, self.traceback = Status.FAILED, error, tb
        self.generators = []
        log.error("plugin %s failed: %s\n%s", self.name, error, tb or "")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def allow_list() -> set[str] | None:
    """Plugin names allowed by ``STUDIOLO_LOAD_PLUGINS``, or None when the variable is unset (all allowed)."""
    value = os.environ.get(ALLOW_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def discover() -> list[metadata.EntryPoint]:
    """The ``studiolo`` entry points, built-ins first, then by name."""
    eps = metadata.entry_points(group=PROJECT_NAME)
    return sorted(eps, key=lambda ep: (not _is_builtin(ep), ep.name))


def _is_builtin(ep: metadata.EntryPoint) -> bool:
    dist = getattr(ep, "dist", None)
    return dist is not None and _canonical(dist.metadata["Name"] or "") == DISTRIBUTION


def _seconds_from_env(variable: str, default: float) -> float:
    value = os.environ.get(variable, "").strip()
    try:
        seconds = float(value) if value else default
    except ValueError:
        log.warning("ignored %s=%r: not a number of seconds", variable, value)
        return default
    return seconds if seconds >= 0 else default


def stopped_message(name: str, mark: Mark) -> str:
    """The failure shown for a plugin skipped because its import never finished in an earlier process."""
    why = f": {mark.reason}" if mark.reason else ""
    return (f"Studiolo stopped while loading this plugin (at {mark.when()}){why}. It is skipped so that Studiolo "
            f"starts; to try it again, run `studiolo plugins enable {name}` or press Enable on the Plugins page.")


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def incompatibility(dist: metadata.Distribution | None) -> str | None:
    """Why the distribution's declared Studiolo range excludes this Studiolo, or None when it is compatible (or
    declares no range)."""
    if dist is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    for text in dist.requires or ():
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if _canonical(req.name) != DISTRIBUTION:
            continue
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        if req.specifier and not req.specifier.contains(__version__, prereleases=True):
            return f"it requires {req.name}{req.specifier}, but this is Studiolo {__version__}"
    return None


def check_generator(generator: Any) -> None:
    """Raise :class:`PluginError` saying what is wrong with a generator a plugin registered."""
    if isinstance(generator, type):
        raise PluginError(f"{generator.__name__} was registered as a class; register an instance: "
                          f"register({generator.__name__}()).")
    if not isinstance(generator, Generator):
        raise PluginError(f"{generator!r} is not a desktop.api.Generator.")
    cls = type(generator)
    gid = getattr(generator, "id", None)
    if not isinstance(gid, str) or not GENERATOR_ID_PATTERN.fullmatch(gid):
        raise PluginError(f"{cls.__name__}: id {gid!r} is not a dotted lowercase id like 'image.diffusers'.")
    for attr in ("name", "kind", "version"):
        value = getattr(generator, attr, None)
        if not isinstance(value, str) or not value.strip():
            raise PluginError(f"{gid}: {attr} must be a non-empty string, got {value!r}.")
    if not KIND_PATTERN.fullmatch(generator.kind):
        raise PluginError(f"{gid}: kind {generator.kind!r} must be a short word like 'image'.")
    missing = [m for m in ("load", "generate") if getattr(cls, m) is getattr(Generator, m)]
    if missing:
        raise PluginError(f"{gid}: does not implement {' and '.join(missing)}.")
    if not hasattr(generator, "Params"):
        raise PluginError(f"{gid}: has no Params class.")
    schema(generator.Params)  # raises ParamSchemaError with the reason
    if generator.default_model is not None and not isinstance(generator.default_model, str):
        raise PluginError(f"{gid}: default_model must be a string or None.")
    if not all(isinstance(m, RecommendedModel) for m in generator.recommended_models):
        raise PluginError(f"{gid}: recommended_models must be RecommendedModel instances.")
    patterns = generator.model_file_patterns
    if not isinstance(patterns, tuple) or not all(isinstance(p, str) and p.strip() for p in patterns):
        raise PluginError(f"{gid}: model_file_patterns must be a tuple of fnmatch patterns like ('*.gguf',), "
                          f"got {patterns!r}.")


class PluginManager:
    """Loads plugins and holds their generators.

    ``entry_points`` (tests) replaces discovery; ``settings`` defaults to the user's settings file; ``journal``
    to the load journal of the config folder. ``import_timeout`` (seconds a plugin's import is waited for, 0: no
    bound) and
    ``slow_import`` (seconds above which an import is reported as slow) default to ``STUDIOLO_PLUGIN_IMPORT_TIMEOUT``
    and ``STUDIOLO_PLUGIN_SLOW_IMPORT`` or 30 and 2; ``clock`` times the imports.
    """

    def __init__(self, settings: Settings | None = None,
                 entry_points: Iterable[metadata.EntryPoint] | None = None, *,
                 journal: LoadJournal | None = None, import_timeout: float | None = None,
                 slow_import: float | None = None, clock: Clock = time.monotonic) -> None:
        self.settings = settings if settings is not None else Settings.load()
        self._entry_points = list(entry_points) if entry_points is not None else None
        self.journal = journal if journal is not None else LoadJournal()
        self.import_timeout = (import_timeout if import_timeout is not None
                               else _seconds_from_env(TIMEOUT_ENV, IMPORT_TIMEOUT_S))
        self.slow_import = slow_import if slow_import is not None else _seconds_from_env(SLOW_ENV, SLOW_IMPORT_S)
        self.clock = clock
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.generators: dict[str, Generator] = {}
        self._generator_owner: dict[str, str] = {}
        self._pending: dict[str, metadata.EntryPoint] = {}  # to import, in loading order
        self._imports: dict[str, PluginImport] = {}  # running now (any thread)
        self.released: set[str] = set()  # plugins whose import stopped an earlier Studiolo, enabled again since
        self._prepared = False
        self._cancelled = False

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self, third_party: bool = True) -> PluginManager:
        """Discover the plugins and load them: every one, or only the built-in ones when ``third_party`` is False
        (the others stay :meth:`pending`). Calling it again loads what is still pending. Never raises because of a
        plugin."""
        self.prepare()
        for name in self.pending():
            if third_party or self.plugins[name].builtin:
                self.finish_import(name, self.import_pending(name))
        return self

    def prepare(self) -> None:
        """Discover the plugins (once) and decide which are to be imported: not disabled, not left out by
        ``STUDIOLO_LOAD_PLUGINS``, compatible, and not skipped because their import stopped an earlier Studiolo."""
        if self._prepared:
            return
        self._prepared = True
        allowed = allow_list()
        stopped = self.journal.stopped()
        eps = self._entry_points if self._entry_points is not None else discover()
        for ep in eps:
            record = self._record_for(ep)
            if record is None:
                continue
            mark = stopped.get(record.name)
            if record.name in self.settings.disabled_plugins:
                record.status = Status.DISABLED
            elif allowed is not None and not record.builtin and record.name not in allowed:
                record.status = Status.SKIPPED
                record.error = f"not named in {ALLOW_ENV}"
            elif mark is not None and not record.builtin:
                record.fail(stopped_message(record.name, mark))
                record.quarantined = True
            elif self._compatible(ep, record):
                if mark is not None:  # a built-in: loaded anyway (see the module's docstring)
                    record.warnings.append(f"Studiolo stopped while loading this plugin at {mark.when()}; it is part "
                                           "of Studiolo, so it is loaded anyway")
                    self.journal.release(record.name)
                record.status = Status.LOADING
                self._pending[record.name] = ep

    def pending(self) -> list[str]:
        """The plugins still to be imported, in loading order (built-ins first, then by name)."""
        return list(self._pending)

    def import_pending(self, name: str) -> PluginImport | None:
        """Import the pending plugin ``name`` and wait for it (at most :attr:`import_timeout`). Safe on any thread:
        it touches nothing but the import; :meth:`finish_import` then registers the result. None when the plugin
        is no longer waiting to be imported (disabled meanwhile)."""
        ep = self._pending.get(name)
        record = self.plugins.get(name)
        if ep is None or record is None or record.status != Status.LOADING or self._cancelled:
            return None
        attempt = PluginImport(ep, name, self.journal, clock=self.clock, heavy_modules=HEAVY_MODULES).start()
        self._imports[name] = attempt
        try:
            attempt.wait(self.import_timeout or None)  # 0: no bound
        finally:
            self._imports.pop(name, None)
        return attempt

    def finish_import(self, name: str, attempt: PluginImport | None) -> list[str]:
        """Register what :meth:`import_pending` imported (on the thread that owns the manager, the GUI thread in
        the window) and collect its generators. Returns the generator ids added."""
        ep = self._pending.pop(name, None)
        record = self.plugins.get(name)
        if ep is None or record is None or attempt is None or record.status != Status.LOADING:
            return []
        if attempt.abandoned and not attempt.finished:
            record.fail("not loaded: Studiolo stopped waiting for its import (it was closing)")
            return []
        self._register(record, attempt)
        return self._collect_generators(only=name) if record.status == Status.LOADED else []

    def cancel_imports(self) -> None:
        """Stop waiting for the imports running now and start no more (the window closes); the imports cut short
        are not held against their plugins."""
        self._cancelled = True
        for attempt in list(self._imports.values()):
            attempt.let_go()

    def _record_for(self, ep: metadata.EntryPoint) -> PluginRecord | None:
        dist = getattr(ep, "dist", None)
        meta = dist.metadata if dist is not None else None
        record = PluginRecord(
            name=ep.name,
            module=ep.value,
            distribution=meta["Name"] if meta else None,
            version=dist.version if dist is not None else None,
            summary=meta["Summary"] if meta else None,
            author=(meta["Author"] or meta["Author-email"]) if meta else None,
            builtin=_is_builtin(ep),
        )
        if ep.name in self.plugins:
            other = self.plugins[ep.name]
            key = f"{ep.name} ({record.distribution})"
            record.name = key
            record.fail(f"another plugin is already named {ep.name!r} (from {other.distribution}); "
                        f"uninstall one of them")
            self.plugins[key] = record
            return None
        self.plugins[ep.name] = record
        return record

    @staticmethod
    def _compatible(ep: metadata.EntryPoint, record: PluginRecord) -> bool:
        reason = incompatibility(getattr(ep, "dist", None))
        if reason:
            record.fail(f"incompatible: {reason}. Install a version of the plugin made for this Studiolo, or "
                        f"update Studiolo.")
        return not reason

    def _load_one(self, ep: metadata.EntryPoint, record: PluginRecord) -> None:
        """Import and register one plugin now (its generators are collected by the caller)."""
        if not self._compatible(ep, record):
            return
        record.status = Status.LOADING
        self._pending[record.name] = ep
        attempt = self.import_pending(record.name)
        self._pending.pop(record.name, None)
        if attempt is not None:
            self._register(record, attempt)

    def _register(self, record: PluginRecord, attempt: PluginImport) -> None:
        """Record how the import went and register the plugin's hooks; the record is LOADED when it worked."""
        record.import_seconds = attempt.seconds
        if attempt.error is not None:
            record.fail(attempt.error, attempt.traceback)
            return
        if attempt.seconds is not None and attempt.seconds > self.slow_import:
            record.warnings.append(f"imported in {attempt.seconds:.1f} s, which slows Studiolo's start")
            log.warning("plugin %s imported in %.1f s", record.name, attempt.seconds)
        plugin = attempt.plugin
        if record.builtin:  # Studiolo's distribution ships every built-in: its summary is the app's, not the plugin's
            record.summary = _first_paragraph(inspect.getdoc(plugin)) or record.summary
        if attempt.heavy:
            record.warnings.append(f"imports {', '.join(attempt.heavy)} when it is loaded, which slows Studiolo's "
                                   "start; import them inside load()/generate()")
        unknown = [name for name in dir(plugin) if self.pm.parse_hookimpl_opts(plugin, name) is not None
                   and not hasattr(self.pm.hook, name)]
        if unknown:
            known = ", ".join(sorted(self.hook_names()))
            record.fail(f"implements unknown hook(s) {', '.join(unknown)}; Studiolo's hooks are: {known}")
            return
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            record.fail(f"could not be registered: {one_line(exc)}", traceback.format_exc())
            return
        record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        if not record.hooks:
            record.fail("implements no hooks; mark its functions with @desktop.api.hookimpl")
            self.pm.unregister(plugin)
            return
        record.status = Status.LOADED

    def _collect_generators(self, only: str | None = None) -> list[str]:
        """Call ``register_generators`` of every plugin (or of the plugin ``only``); returns the ids added."""
        order = {name: i for i, name in enumerate(self.plugins)}  # built-ins first, then by name: the first wins
        impls = sorted(self.pm.hook.register_generators.get_hookimpls(), key=lambda i: order[i.plugin_name])
        added: list[str] = []
        for impl in impls:
            if only is not None and impl.plugin_name != only:
                continue
            record = self.plugins[impl.plugin_name]
            found: list[Any] = []
            try:
                with plugin_output_to_stderr():
                    self._call_one(impl.plugin_name, "register_generators", register=found.append)
                for generator in found:
                    check_generator(generator)
                ids = [g.id for g in found]
                for gid in ids:
                    owner = self._generator_owner.get(gid)
                    if owner is not None:
                        raise PluginError(f"generator id {gid!r} is already registered by plugin {owner!r}")
                    if ids.count(gid) > 1:
                        raise PluginError(f"generator id {gid!r} is registered twice by this plugin")
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                record.fail(f"register_generators failed: {one_line(exc)}", traceback.format_exc())
                self.pm.unregister(name=record.name)
                continue
            for generator in found:
                self.generators[generator.id] = generator
                self._generator_owner[generator.id] = record.name
                record.generators.append(generator.id)
                added.append(generator.id)
        return added

    def _call_one(self, plugin_name: str, hook_name: str, **kwargs: Any) -> Any:
        """Call plugin ``plugin_name``'s implementation of ``hook_name`` alone, through pluggy (its hook call
        monitoring, wrappers and argument checks apply), so that what it raises is that plugin's alone. Returns its
        result (None when it returned None)."""
        others = [plugin for name, plugin in self.pm.list_name_plugin() if name != plugin_name]
        results = self.pm.subset_hook_caller(hook_name, remove_plugins=others)(**kwargs)
        return results[0] if results else None

    # -- queries -----------------------------------------------------------------------------------------

    def hook_names(self) -> list[str]:
        return [name for name in dir(self.pm.hook) if not name.startswith("_")]

    def generator(self, generator_id: str) -> Generator:
        """The generator with this id, or a :class:`PluginError` listing the ids there are."""
        try:
            return self.generators[generator_id]
        except KeyError:
            ids = ", ".join(sorted(self.generators)) or "none (no generator plugin is loaded)"
            raise PluginError(f"No generator {generator_id!r}.", hint=f"Available generators: {ids}.") from None

    def plugin_of(self, generator_id: str) -> PluginRecord:
        return self.plugins[self._generator_owner[generator_id]]

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of a hook on its own; a raising one marks its plugin failed and the rest
        still run. Returns ``(plugin name, result)`` pairs. For hooks added after ``register_generators``."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                results.append((impl.plugin_name, self._call_one(impl.plugin_name, hook_name, **kwargs)))
            except Exception as exc:
                self.plugins[impl.plugin_name].fail(f"{hook_name} failed: {one_line(exc)}", traceback.format_exc())
        return results

    # -- enable / disable --------------------------------------------------------------------------------

    def known_names(self) -> list[str]:
        eps = self._entry_points if self._entry_points is not None else discover()
        return sorted({ep.name for ep in eps})

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable a plugin by name, persisted in the settings; takes effect at the next load. Enabling
        also lifts the skip of a plugin whose import stopped an earlier Studiolo. Returns whether anything changed.
        An unknown name raises :class:`PluginError` listing the known ones."""
        known = self.known_names()
        if name not in known:
            raise PluginError(f"No plugin named {name!r}.",
                              hint="Known plugins: " + (", ".join(known) or "none are installed") + ".")
        disabled = set(self.settings.disabled_plugins)
        before = name in disabled
        (disabled.discard if enabled else disabled.add)(name)
        self.settings.disabled_plugins = sorted(disabled)
        self.settings.save()
        released = enabled and self.journal.release(name)
        if released:
            self.released.add(name)
        return released or before != (name in disabled)

    def apply_enabled(self, name: str) -> tuple[list[str], list[str]]:
        """Make the running app follow the saved choice for plugin ``name`` at once, without a restart: a plugin
        now disabled has its hooks unregistered and its generators removed; one now enabled is loaded (like at
        start, failures recorded) and its generators added. Returns ``(added ids, removed ids)``. A plugin whose
        state already matches, or one skipped by ``STUDIOLO_LOAD_PLUGINS``, is left alone. (Python cannot unload
        the plugin's modules: they stay imported, unused.)"""
        record = self.plugins.get(name)
        if record is not None and record.status == Status.SKIPPED:
            return [], []  # STUDIOLO_LOAD_PLUGINS leaves it out, whatever the setting
        if name in self.settings.disabled_plugins:
            if record is None or record.status == Status.DISABLED:
                return [], []
            removed = list(record.generators)
            for gid in removed:
                self.generators.pop(gid, None)
                self._generator_owner.pop(gid, None)
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            record.generators, record.hooks = [], []
            record.status, record.error, record.traceback = Status.DISABLED, None, None
            return [], removed
        if record is None or record.status != Status.DISABLED:
            return [], []
        eps = self._entry_points if self._entry_points is not None else discover()
        ep = next((e for e in eps if e.name == name), None)
        if ep is None:
            return [], []
        del self.plugins[name]  # loaded again after the others: a generator id already taken stays with its owner
        fresh = self._record_for(ep)
        if fresh is None:
            return [], []
        self._load_one(ep, fresh)
        if fresh.status == Status.FAILED:
            return [], []
        return self._collect_generators(only=name), []


def _first_paragraph(doc: str | None) -> str | None:
    """The first paragraph of a docstring, on one line (None for none)."""
    if not doc:
        return None
    return " ".join(doc.strip().split("\n\n", 1)[0].split()) or None


def load_plugins(settings: Settings | None = None) -> PluginManager:
    """A loaded plugin manager over the installed entry points."""
    return PluginManager(settings).load()

