"""The plugin manager: find plugins by entry point, load each on its own, collect their generators.

Built-in generators and third-party ones take the same path: an entry point in the ``studiolo`` group. Every
entry point is imported on its own and every hook implementation is called on its own, so a plugin that fails —
it does not import, it needs another Studiolo, its hook raises, it registers a malformed or duplicate generator —
is recorded as failed with its traceback, and every other plugin keeps working. (pluggy's own
``load_setuptools_entrypoints`` and hook calls stop at the first failure; we do not use them for that reason.)

Which plugins load: all of them, except those the user disabled (persisted in the settings) and, when the
``STUDIOLO_LOAD_PLUGINS`` variable is set (a comma list; empty means none), third-party plugins not named in it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from desktop import __version__, hookspecs
from desktop.api import GENERATOR_ID_PATTERN, PROJECT_NAME, Generator, PluginError, RecommendedModel
from desktop.api.params import schema
from desktop.settings import Settings

log = logging.getLogger(__name__)

ALLOW_ENV = "STUDIOLO_LOAD_PLUGINS"
DISTRIBUTION = "studiolo"
KIND_PATTERN = re.compile(r"[a-z][a-z0-9_-]{0,31}")
HEAVY_MODULES = ("torch", "diffusers", "transformers", "tensorflow", "jax")


class Status:
    LOADED = "loaded"
    DISABLED = "disabled"
    FAILED = "failed"
    SKIPPED = "skipped"  # not named in STUDIOLO_LOAD_PLUGINS


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


class PluginManager:
    """Loads plugins and holds their generators.

    ``entry_points`` (tests) replaces discovery; ``settings`` defaults to the user's settings file.
    """

    def __init__(self, settings: Settings | None = None,
                 entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        self.settings = settings if settings is not None else Settings.load()
        self._entry_points = list(entry_points) if entry_points is not None else None
        self.pm = pluggy.PluginManager(PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginRecord] = {}
        self.generators: dict[str, Generator] = {}
        self._generator_owner: dict[str, str] = {}
        self._loaded = False

    # -- loading ---------------------------------------------------------------------------------------------

    def load(self) -> PluginManager:
        """Discover and load every plugin (once). Never raises because of a plugin."""
        if self._loaded:
            return self
        self._loaded = True
        allowed = allow_list()
        eps = self._entry_points if self._entry_points is not None else discover()
        for ep in eps:
            record = self._record_for(ep)
            if record is None:
                continue
            if record.name in self.settings.disabled_plugins:
                record.status = Status.DISABLED
            elif allowed is not None and not record.builtin and record.name not in allowed:
                record.status = Status.SKIPPED
                record.error = f"not named in {ALLOW_ENV}"
            else:
                self._load_one(ep, record)
        self._collect_generators()
        return self

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

    def _load_one(self, ep: metadata.EntryPoint, record: PluginRecord) -> None:
        reason = incompatibility(getattr(ep, "dist", None))
        if reason:
            record.fail(f"incompatible: {reason}. Install a version of the plugin made for this Studiolo, or "
                        f"update Studiolo.")
            return
        heavy_before = {m for m in HEAVY_MODULES if m in sys.modules}
        try:
            plugin = ep.load()
        except BaseException as exc:  # an import may raise anything, SystemExit included
            if isinstance(exc, KeyboardInterrupt):
                raise
            record.fail(f"import failed: {_one_line(exc)}", traceback.format_exc())
            return
        heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules and m not in heavy_before)
        if heavy:
            record.warnings.append(f"imports {', '.join(heavy)} when it is loaded, which slows Studiolo's start; "
                                   "import them inside load()/generate()")
        unknown = [name for name in dir(plugin) if self.pm.parse_hookimpl_opts(plugin, name) is not None
                   and not hasattr(self.pm.hook, name)]
        if unknown:
            known = ", ".join(sorted(self.hook_names()))
            record.fail(f"implements unknown hook(s) {', '.join(unknown)}; Studiolo's hooks are: {known}")
            return
        try:
            self.pm.register(plugin, name=record.name)
        except Exception as exc:
            record.fail(f"could not be registered: {_one_line(exc)}", traceback.format_exc())
            return
        record.hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ())
        if not record.hooks:
            record.fail("implements no hooks; mark its functions with @desktop.api.hookimpl")
            self.pm.unregister(plugin)

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
                self._call_impl(impl, register=found.append)
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
                record.fail(f"register_generators failed: {_one_line(exc)}", traceback.format_exc())
                self.pm.unregister(name=record.name)
                continue
            for generator in found:
                self.generators[generator.id] = generator
                self._generator_owner[generator.id] = record.name
                record.generators.append(generator.id)
                added.append(generator.id)
        return added

    @staticmethod
    def _call_impl(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
        return impl.function(*(kwargs[name] for name in impl.argnames))

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
                results.append((impl.plugin_name, self._call_impl(impl, **kwargs)))
            except Exception as exc:
                self.plugins[impl.plugin_name].fail(f"{hook_name} failed: {_one_line(exc)}", traceback.format_exc())
        return results

    # -- enable / disable --------------------------------------------------------------------------------

    def known_names(self) -> list[str]:
        eps = self._entry_points if self._entry_points is not None else discover()
        return sorted({ep.name for ep in eps})

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable a plugin by name, persisted in the settings; takes effect at the next load. Returns
        whether anything changed. An unknown name raises :class:`PluginError` listing the known ones."""
        known = self.known_names()
        if name not in known:
            raise PluginError(f"No plugin named {name!r}.",
                              hint="Known plugins: " + (", ".join(known) or "none are installed") + ".")
        disabled = set(self.settings.disabled_plugins)
        before = name in disabled
        (disabled.discard if enabled else disabled.add)(name)
        self.settings.disabled_plugins = sorted(disabled)
        self.settings.save()
        return before != (name in disabled)

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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_plugins(settings: Settings | None = None) -> PluginManager:
    """A loaded plugin manager over the installed entry points."""
    return PluginManager(settings).load()

