"""Install, update and uninstall plugins without breaking Studiolo's environment.

Every install is planned before anything changes: pip's ``--dry-run --report`` runs under a constraints file that
pins every installed distribution (Studiolo included) at its installed version. The plan is refused — with a
short reason — when the resolver finds no way to install the plugin without changing an installed package, when
the plugin does not declare the Studiolo range it supports (a ``studiolo>=…,<…`` dependency) or declares one that
excludes this Studiolo, when a package is on the blocklist, when pip cannot find or build it, or when one of its
wheels would write into an import name another distribution owns (:mod:`desktop.install.ownership`). The plan
keeps one wheel of every package it adds (:mod:`desktop.install.staging`; a source folder is copied and built
outside the author's folder), and an accepted plan installs exactly those wheels, under the same pins. Afterwards
the installed set is compared with the plan and the plugin is loaded in a subprocess as Studiolo would load it —
imported, registered, its generators registered and checked (:mod:`desktop.install.load_check`); a new plugin that
fails to load is uninstalled again.

The methods block and report through callbacks, so the GUI runs them on a worker thread and the CLI in the
foreground: ``on_line`` receives pip's output line by line; ``cancel`` (a :class:`threading.Event`) stops the
planning step. The install itself cannot be cancelled once it started (pip cannot roll back a half-done install):
:meth:`Installer.install` looks at ``cancel`` only before it starts pip.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from desktop.install.blocklist import Blocklist, load_blocklist
from desktop.install.errors import InstallCancelled, PluginInstallError
from desktop.install.load_check import CHECK_FAILED, check_plugin_loads
from desktop.install.ownership import clashes, installed_owners, wheel_owner
from desktop.install.pip_messages import explain_failure
from desktop.install.pip_runner import _PRELUDE, JSON_MARK, PipRunner
from desktop.install.specs import InstallRequest, Kind, parse_spec, validate_name
from desktop.install.staging import copy_source, stage_wheels

LineCallback = Callable[[str], None]
STUDIOLO = "studiolo"
GROUP = "studiolo"

INVENTORY_SCRIPT = _PRELUDE + """
import json, re
from importlib import metadata
def canon(name):
    return re.sub(r"[-_.]+", "-", name).lower()
out = {}
for dist in metadata.distributions():
    name = dist.metadata["Name"]
    if not name or canon(name) in out:
        continue
    requires = []
    for text in dist.requires or ():
        head, _, marker = text.partition(";")
        if re.search(r"\\bextra\\s*==", marker):
            continue
        match = re.match(r"\\s*([A-Za-z0-9][A-Za-z0-9._-]*)", head)
        if match:
            requires.append(canon(match.group(1)))
    eps = [f"{ep.name} = {ep.value}" for ep in dist.entry_points if ep.group == %r]
    out[canon(name)] = {"name": name, "version": dist.version, "entry_points": eps, "requires": requires}
print(%r + json.dumps(out))
""" % (GROUP, JSON_MARK)

SYS_PATH_SCRIPT = _PRELUDE + """
import json
print(%r + json.dumps(sys.path))
""" % JSON_MARK
OWNERSHIP_HINT = ("A plugin's code goes in a package of its own, named after the plugin (like studiolo_myplugin); "
                  "names like desktop and plugins belong to Studiolo.")


# -- what a plan, an install and an uninstall report ---------------------------------------------------------


@dataclass
class PlannedPackage:
    """One distribution the install would add (or, for a plugin's update, replace)."""

    name: str
    version: str
    requested: bool = False  # the package asked for (the others are its new dependencies)
    direct: bool = False  # from a file or folder
    requires: list[str] = field(default_factory=list)
    replaces: str | None = None  # the installed version it replaces
    wheel: Path | None = None  # its wheel, in the plan's work folder: what the install writes

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)

    def describe(self) -> str:
        what = f"{self.name} {self.replaces} → {self.version}" if self.replaces else f"{self.name} {self.version}"
        role = "the plugin" if self.requested else "a new dependency"
        return f"{what} ({role}{', from a file' if self.direct else ''})"


@dataclass
class Plan:
    """What installing ``request`` would do, or why it is refused (``ok`` false, ``reasons``, ``hint``).

    ``installed`` is the environment the plan was made against and ``pins`` the constraints it used;
    :meth:`Installer.install` refuses to run when the environment changed since. ``work`` is the temporary folder
    holding the packages' wheels; it is deleted by :meth:`discard`, or when the plan is garbage-collected.
    """

    request: InstallRequest
    ok: bool
    reasons: list[str] = field(default_factory=list)
    hint: str | None = None
    packages: list[PlannedPackage] = field(default_factory=list)
    studiolo_version: str | None = None
    upgrade: bool = False
    installed: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    note: str | None = None
    log: list[str] = field(default_factory=list)
    work: Path | None = field(default=None, repr=False, compare=False)

    def keep_work(self, folder: Path) -> None:
        """Hold ``folder`` (the staged wheels) for the plan's lifetime."""
        self.work = folder
        self._finalizer = weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)

    def discard(self) -> None:
        """Delete the plan's work folder now (the plan can no longer be installed)."""
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        self.work = None

    @property
    def nothing_to_do(self) -> bool:
        return self.ok and not self.packages

    @property
    def requested(self) -> list[PlannedPackage]:
        return [p for p in self.packages if p.requested]

    def summary(self) -> list[str]:
        """Short lines for a person: what would be installed, or why not."""
        if not self.ok:
            return list(self.reasons)
        if self.nothing_to_do:
            return [self.note or "Nothing to install."]
        return [p.describe() for p in sorted(self.packages, key=lambda p: (not p.requested, p.key))]

    def error(self) -> PluginInstallError:
        """The refusal as an exception (for callers that raise)."""
        return PluginInstallError("Cannot install " + self.request.describe() + ": " + " ".join(self.reasons),
                                  hint=self.hint)


@dataclass
class InstallResult:
    """How an install ended. ``ok``: the plugin is installed and loads. ``installed``: it is installed (a new
    plugin that fails to load is uninstalled again; an update that fails to load stays, and the app lists it as
    failed). ``import_errors`` and ``tracebacks``: why each of its plugins fails to load (import, registration, its
    hooks, the generators it registers), by plugin name."""

    ok: bool
    message: str
    hint: str | None = None
    installed: bool = False
    plugin: str | None = None
    version: str | None = None
    entry_points: list[str] = field(default_factory=list)
    import_errors: dict[str, str] = field(default_factory=dict)
    tracebacks: dict[str, str] = field(default_factory=dict)
    added: dict[str, str] = field(default_factory=dict)
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


@dataclass
class InstalledPlugin:
    """A third-party plugin distribution in the target environment."""

    name: str
    key: str
    version: str
    entry_points: list[str]
    required_by: list[str] = field(default_factory=list)

    @property
    def plugin_names(self) -> list[str]:
        return [ep.split("=", 1)[0].strip() for ep in self.entry_points]


@dataclass
class UninstallResult:
    ok: bool
    message: str
    hint: str | None = None
    removed: dict[str, str] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


# -- the installer ---------------------------------------------------------------------------------------------


class Installer:
    """Plans and runs plugin installs in the environment of ``runner`` (default: the Python Studiolo runs in).

    ``build_isolation`` false passes ``--no-build-isolation`` (a folder or source archive is then built with the
    build tools already installed: offline, but they must be there).
    """

    def __init__(self, runner: PipRunner | None = None, *, build_isolation: bool = True,
                 blocklist: Blocklist | None = None) -> None:
        self.runner = runner if runner is not None else PipRunner()
        self.build_isolation = build_isolation
        self.blocklist = blocklist if blocklist is not None else load_blocklist()

    # -- planning ------------------------------------------------------------------------------------------

    def plan(self, spec: str | InstallRequest, *, on_line: LineCallback | None = None,
             cancel: threading.Event | None = None) -> Plan:
        """What installing ``spec`` would change, decided by a dry run; nothing is installed.

        Raises :class:`PluginInstallError` for a spec that is not acceptable at all (an option, a URL, a missing
        file), and :class:`InstallCancelled` when ``cancel`` is set; every other refusal is a Plan with
        ``ok`` false.
        """
        request = spec if isinstance(spec, InstallRequest) else parse_spec(spec)
        return self._plan(request, upgrade=False, on_line=on_line, cancel=cancel)

    def plan_update(self, name: str, *, on_line: LineCallback | None = None,
                    cancel: threading.Event | None = None) -> Plan:
        """What updating the installed plugin ``name`` to its newest compatible version would change."""
        plugin = self.plugin(name, for_uninstall=False)
        request = InstallRequest(Kind.REQUIREMENT, name, plugin.key, plugin.key)
        return self._plan(request, upgrade=True, on_line=on_line, cancel=cancel)

    def _plan(self, request: InstallRequest, *, upgrade: bool, on_line: LineCallback | None,
              cancel: threading.Event | None) -> Plan:
        if request.name == STUDIOLO:
            raise PluginInstallError("Studiolo itself is not a plugin and is not installed or updated here.",
                                     hint="Update Studiolo the way it was installed.")
        if request.name:
            blocked = self.blocklist.check(request.name, request.version)
            if blocked:
                return Plan(request, False, [blocked], hint="Studiolo refuses packages on its blocklist.",
                            upgrade=upgrade)
        _raise_if_cancelled(cancel)
        inventory = self._inventory()
        installed = {key: info["version"] for key, info in inventory.items()}
        studiolo = installed.get(STUDIOLO)
        if studiolo is None:
            raise PluginInstallError(f"Studiolo is not installed in the Python environment of "
                                     f"{self.runner.python}.",
                                     hint="Plugins are installed into the environment Studiolo runs from.")
        replaceable = set()
        if request.name in inventory and inventory[request.name]["entry_points"]:
            replaceable.add(request.name)  # a plugin may be replaced by another version of itself
        pins = {key: version for key, version in installed.items() if key not in replaceable and _pinnable(version)}
        plan = Plan(request, True, studiolo_version=studiolo, upgrade=upgrade, installed=installed, pins=pins)
        _emit(on_line, f"==> Checking what installing {request.describe()} would change (nothing is installed "
                       "yet)")
        work = Path(tempfile.mkdtemp(prefix="studiolo-plan-"))
        try:
            data = self._dry_run(plan, work, replaceable, on_line, cancel)
            if data is not None and plan.ok and plan.packages:
                self._stage(plan, data, work, on_line, cancel)
            if plan.ok and plan.packages:
                plan.keep_work(work)
        finally:
            if plan.work is None:
                shutil.rmtree(work, ignore_errors=True)
        if plan.ok and not plan.packages:
            current = installed.get(request.name or "")
            plan.note = (f"{request.name} {current} is already "
                         + ("the newest version that fits." if upgrade else "installed.")) if current else \
                "Nothing to install: everything it needs is already installed."
        return plan

    def _dry_run(self, plan: Plan, work: Path, replaceable: set[str], on_line: LineCallback | None,
                 cancel: threading.Event | None) -> dict[str, Any] | None:
        """pip's dry run in ``work`` (a source folder is copied there first): fills ``plan.packages`` and checks
        them; returns pip's report, or None when pip failed (the plan is then refused with the reasons)."""
        request = plan.request
        source = request.arg
        if request.kind == Kind.FOLDER:  # built from a copy: the author's folder stays as it is
            source = str(copy_source(Path(request.arg), work / "source" / Path(request.arg).name))
        report = work / "report.json"
        args = self._install_args(request, plan.upgrade, work, plan.pins, dry_run_report=report, source=source)
        _raise_if_cancelled(cancel)
        result = self.runner.run(args, on_line=on_line, cancel=cancel, cwd=work)
        plan.log = result.lines
        if not result.ok:
            explanation = explain_failure(result.lines, request=request, installed=plan.installed,
                                          used_index=self._uses_index())
            plan.ok, plan.reasons, plan.hint = False, explanation.reasons, explanation.hint
            return None
        try:
            data = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PluginInstallError(f"pip's dry run left no readable report ({exc}).") from exc
        plan.packages = _packages_from_report(data, plan.installed)
        self._check(plan, replaceable, data.get("environment") or {})
        return data

    def _stage(self, plan: Plan, data: Mapping[str, Any], work: Path, on_line: LineCallback | None,
               cancel: threading.Event | None) -> None:
        """Put a wheel of every planned package in ``work`` and refuse the plan when one cannot be had or would
        write into an import name another distribution owns."""
        _emit(on_line, "==> Getting the wheels to install, and checking the names they use")
        staged = stage_wheels(self.runner, data.get("install") or (), work / "wheels",
                              build_isolation=self.build_isolation, on_line=on_line, cancel=cancel)
        plan.log = plan.log + staged.log
        if staged.failed is not None:
            explanation = explain_failure(staged.failed.lines, request=plan.request, installed=plan.installed,
                                          used_index=self._uses_index())
            plan.ok, plan.reasons, plan.hint = False, explanation.reasons, explanation.hint
            return
        if staged.missing:
            plan.ok, plan.reasons = False, [f"pip made no wheel of {', '.join(staged.missing)}."]
            plan.hint = "pip's log above has the details."
            return
        for package in plan.packages:
            package.wheel = staged.wheels[package.key]
        sys_path = self.runner.python_json(SYS_PATH_SCRIPT)
        installed = installed_owners([p for p in sys_path if isinstance(p, str) and p],
                                     skip=[p.key for p in plan.packages if p.replaces is not None])
        new = [wheel_owner(p.wheel, p.name, p.version, installed) for p in plan.packages if p.wheel is not None]
        reasons = clashes(new, installed)
        if reasons:
            plan.ok, plan.reasons, plan.hint = False, reasons, OWNERSHIP_HINT

    def _check(self, plan: Plan, replaceable: set[str], environment: Mapping[str, str]) -> None:
        """Refuse a plan that changes installed packages, is not a plugin for this Studiolo, or is blocklisted."""
        reasons: list[str] = []
        for package in plan.packages:
            before = plan.installed.get(package.key)
            if before is not None and package.key not in replaceable:
                reasons.append(f"It would change {package.name} {before} (installed) to {package.version}.")
            blocked = self.blocklist.check(package.name, package.version)
            if blocked:
                reasons.append(blocked)
            if package.key == STUDIOLO:
                reasons.append("It is Studiolo itself, not a plugin.")
        for package in plan.requested:
            problem = _studiolo_requirement_problem(package, plan.studiolo_version or "", environment)
            if problem:
                reasons.append(problem)
        if reasons:
            plan.ok, plan.reasons = False, reasons
            plan.hint = ("Studiolo installs only plugins made for this version of Studiolo, and never changes "
                         "packages that are already installed, so that the app keeps working.")

    # -- installing ----------------------------------------------------------------------------------------

    def install(self, plan: Plan, *, on_line: LineCallback | None = None,
                cancel: threading.Event | None = None) -> InstallResult:
        """Install an accepted plan — exactly the wheels it staged — then check the result. ``cancel`` is honoured
        only before pip starts."""
        if not plan.ok:
            raise plan.error()
        if plan.nothing_to_do:
            return InstallResult(True, plan.note or "Nothing to install.", installed=True,
                                 plugin=plan.request.name)
        if any(p.wheel is None or not p.wheel.is_file() for p in plan.packages):
            raise PluginInstallError("This install's checked packages are gone (the check was discarded).",
                                     hint="Check the install again, then install.")
        _raise_if_cancelled(cancel)
        before = self.runner.freeze()
        if before != plan.installed:
            changed = sorted(set(before.items()) ^ set(plan.installed.items()))
            raise PluginInstallError("The installed packages changed since the install was checked ("
                                     + ", ".join(f"{k} {v}" for k, v in changed[:5]) + ").",
                                     hint="Check the install again, then install.")
        _raise_if_cancelled(cancel)
        pins = dict(plan.pins)
        pins.update({p.key: p.version for p in plan.packages if not p.direct})  # install exactly what was planned
        _emit(on_line, "==> Installing (this cannot be interrupted)")
        with tempfile.TemporaryDirectory(prefix="studiolo-install-") as tmp:
            args = self._wheel_install_args([p.wheel for p in plan.packages if p.wheel is not None], Path(tmp), pins)
            result = self.runner.run(args, on_line=on_line, cwd=tmp, interruptible=False)
        after = self.runner.freeze()
        outcome = _diff(before, after)
        outcome.log = result.lines
        if not result.ok:
            explanation = explain_failure(result.lines, request=plan.request, installed=before,
                                          used_index=self._uses_index())
            outcome.ok, outcome.hint = False, explanation.hint
            if after == before:
                outcome.message = " ".join(explanation.reasons) + " Nothing was changed."
            else:
                outcome.message = (" ".join(explanation.reasons) + " pip stopped partway and changed: "
                                   + _describe_changes(outcome) + ".")
                outcome.hint = "Uninstall what it added (`studiolo plugins uninstall NAME`), or repeat the install."
            return outcome
        expected = {p.key: p.version for p in plan.packages}
        outcome.unexpected = _unexpected(outcome, expected)
        requested = plan.requested[0] if plan.requested else None
        if requested is None:
            outcome.ok, outcome.installed, outcome.message = True, True, "Installed " + _describe_changes(outcome)
            return outcome
        return self._verify_plugin(plan, requested, outcome, before, on_line)

    def _verify_plugin(self, plan: Plan, requested: PlannedPackage, outcome: InstallResult,
                       before: Mapping[str, str], on_line: LineCallback | None) -> InstallResult:
        outcome.plugin, outcome.version = requested.name, requested.version
        inventory = self._inventory()
        info = inventory.get(requested.key)
        if info is None or info["version"] != requested.version:
            outcome.ok = False
            outcome.message = (f"pip reported success, but {requested.name} {requested.version} is not installed "
                               f"afterwards.")
            return outcome
        outcome.entry_points = list(info["entry_points"])
        if not outcome.entry_points:
            return self._remove_non_plugin(plan, requested, outcome, before, on_line)
        _emit(on_line, f"==> Loading {requested.name} as Studiolo would, to check that it works")
        outcome.import_errors, outcome.tracebacks = check_plugin_loads(self.runner, requested.key)
        for name, error in outcome.import_errors.items():
            _emit(on_line, f"==> {error}" if name == CHECK_FAILED else f"==> Plugin {name} fails to load: {error}")
            for line in outcome.tracebacks.get(name, "").rstrip().splitlines():
                _emit(on_line, line)
        if outcome.import_errors:
            failures = "; ".join(error if name == CHECK_FAILED else f"plugin {name}: {error}"
                                 for name, error in outcome.import_errors.items())
            return self._take_back(requested, outcome, before, on_line,
                                   f"{requested.name} {requested.version} fails to load in Studiolo ({failures}).",
                                   hint="Studiolo installs only plugins that load. Install a fixed version, or "
                                        "send the plugin's author the traceback above.")
        outcome.installed = True
        names = ", ".join(ep.split("=", 1)[0].strip() for ep in outcome.entry_points)
        changes = _describe_changes(outcome)
        if outcome.unexpected:
            outcome.ok = False
            outcome.message = (f"Installed {changes}, but other packages changed too: "
                               + "; ".join(outcome.unexpected) + ".")
            outcome.hint = "Check Studiolo still starts; `studiolo plugins list` shows every plugin's status."
        else:
            outcome.ok = True
            outcome.message = f"Installed {changes}. Plugin(s): {names}. Restart Studiolo to use it."
        return outcome

    def _remove_non_plugin(self, plan: Plan, requested: PlannedPackage, outcome: InstallResult,
                           before: Mapping[str, str], on_line: LineCallback | None) -> InstallResult:
        """A package that declares a Studiolo range but no ``studiolo`` entry point: take the install back."""
        reason = (f"{requested.name} {requested.version} is not a Studiolo plugin: it has no '{GROUP}' entry "
                  "point.")
        return self._take_back(requested, outcome, before, on_line, reason,
                               hint="Check that the package is a plugin for Studiolo (see docs/plugins.md).")

    def _take_back(self, requested: PlannedPackage, outcome: InstallResult, before: Mapping[str, str],
                   on_line: LineCallback | None, reason: str, hint: str) -> InstallResult:
        """The installed plugin is refused after all: uninstall what the install added. An update that replaced a
        version stays (the version it replaced cannot be restored), reported as failing."""
        outcome.ok = False
        if outcome.changed:
            outcome.installed = True
            outcome.message = reason + " It stays installed, because the version it replaced cannot be restored."
            outcome.hint = (f"Uninstall it with `studiolo plugins uninstall {requested.name}` (or from the Plugins "
                            "page), or install a fixed version.")
            return outcome
        _emit(on_line, f"==> {reason} Uninstalling it again")
        added = sorted(outcome.added)
        self.runner.run(["uninstall", "--yes", "--no-input", "--disable-pip-version-check", *added],
                        on_line=on_line, interruptible=False)
        after = self.runner.freeze()
        restored = after == dict(before)
        outcome.installed = requested.key in after
        outcome.message = reason + (" It was uninstalled again; nothing was changed." if restored else
                                    " Uninstalling it again did not restore every package.")
        outcome.hint = hint
        return outcome

    def update(self, name: str, *, on_line: LineCallback | None = None,
               cancel: threading.Event | None = None) -> InstallResult:
        """Plan and install the newest compatible version of the installed plugin ``name``."""
        plan = self.plan_update(name, on_line=on_line, cancel=cancel)
        if not plan.ok:
            return InstallResult(False, " ".join(plan.reasons), hint=plan.hint, installed=True, plugin=name,
                                 log=plan.log)
        return self.install(plan, on_line=on_line, cancel=cancel)

    # -- uninstalling --------------------------------------------------------------------------------------

    def plugins(self) -> list[InstalledPlugin]:
        """The third-party plugin distributions installed in the target environment."""
        inventory = self._inventory()
        return [_installed_plugin(key, inventory) for key, info in sorted(inventory.items())
                if info["entry_points"] and key != STUDIOLO]

    def plugin(self, name: str, *, for_uninstall: bool = True) -> InstalledPlugin:
        """The installed plugin called ``name`` (its package name or one of its plugin names); raises
        :class:`PluginInstallError` saying why it cannot be updated or uninstalled."""
        key = validate_name(name)
        inventory = self._inventory()
        if key not in inventory:
            owners = [k for k, info in inventory.items()
                      if any(ep.split("=", 1)[0].strip() == name for ep in info["entry_points"])]
            if not owners:
                known = ", ".join(p.name for p in self.plugins()) or "none are installed"
                raise PluginInstallError(f"No installed plugin is named {name!r}.",
                                         hint=f"Installed third-party plugins: {known}.")
            key = owners[0]
        info = inventory[key]
        if key == STUDIOLO:
            what = "Studiolo itself" if canonicalize_name(name) == STUDIOLO else \
                f"{name!r} is a built-in plugin, part of Studiolo, and"
            raise PluginInstallError(f"{what} cannot be updated or uninstalled here.",
                                     hint="To turn a built-in plugin off, use `studiolo plugins disable NAME`.")
        if not info["entry_points"]:
            raise PluginInstallError(f"{info['name']} {info['version']} is not a Studiolo plugin (it has no "
                                     f"'{GROUP}' entry point); Studiolo manages only plugins.",
                                     hint="Other packages are managed with pip.")
        plugin = _installed_plugin(key, inventory)
        if for_uninstall and plugin.required_by:
            raise PluginInstallError(f"{plugin.name} is needed by {', '.join(plugin.required_by)}.",
                                     hint="Uninstall those first.")
        return plugin

    def uninstall(self, name: str, *, on_line: LineCallback | None = None) -> UninstallResult:
        """Uninstall the plugin ``name`` (see :meth:`plugin` for what is refused). Its dependencies stay."""
        plugin = self.plugin(name)
        before = self.runner.freeze()
        _emit(on_line, f"==> Uninstalling {plugin.name} {plugin.version}")
        result = self.runner.run(["uninstall", "--yes", "--no-input", "--disable-pip-version-check", plugin.key],
                                 on_line=on_line, interruptible=False)
        after = self.runner.freeze()
        diff = _diff(before, after)
        outcome = UninstallResult(False, "", removed=diff.removed, log=result.lines)
        outcome.unexpected = [f"{k} {v}" for k, v in diff.added.items()] + [
            f"{k} {a} → {b}" for k, (a, b) in diff.changed.items()] + [
            f"{k} {v} removed" for k, v in diff.removed.items() if k != plugin.key]
        if plugin.key in after:
            errors = [line.removeprefix("ERROR:").strip() for line in result.lines if line.startswith("ERROR:")]
            outcome.message = f"{plugin.name} could not be uninstalled" + (f": {errors[-1]}" if errors else ".")
            outcome.hint = "pip's log above has the details."
            return outcome
        outcome.ok = not outcome.unexpected
        outcome.message = f"Uninstalled {plugin.name} {plugin.version}. Restart Studiolo for it to take effect."
        if outcome.unexpected:
            outcome.message += " Other packages changed too: " + "; ".join(outcome.unexpected) + "."
        return outcome

    # -- helpers -------------------------------------------------------------------------------------------

    def _inventory(self) -> dict[str, dict[str, Any]]:
        value = self.runner.python_json(INVENTORY_SCRIPT)
        if not isinstance(value, dict):
            raise PluginInstallError(f"Could not list the packages installed for {self.runner.python}.")
        return value

    def _uses_index(self) -> bool:
        return "--no-index" not in self.runner.index_args

    def _install_args(self, request: InstallRequest, upgrade: bool, folder: Path, pins: Mapping[str, str],
                      dry_run_report: Path | None = None, source: str | None = None) -> list[str]:
        """pip's arguments for planning ``request`` (``source``: what pip gets instead of ``request.arg``, the copy
        of a source folder)."""
        args = _base_install_args(folder, pins)
        if dry_run_report is not None:
            args += ["--dry-run", "--report", str(dry_run_report)]
        if upgrade:
            args += ["--upgrade", "--upgrade-strategy", "only-if-needed"]
        if not self.build_isolation:
            args.append("--no-build-isolation")
        args += self.runner.index_args
        args.append(source or request.arg)  # parse_spec validated it: a requirement or an absolute path, no option
        return args

    @staticmethod
    def _wheel_install_args(wheels: list[Path], folder: Path, pins: Mapping[str, str]) -> list[str]:
        """pip's arguments for installing exactly the plan's wheels: nothing else is looked up or resolved (the
        dry run did that), each is installed even when the same version is there (the plan replaces it)."""
        return [*_base_install_args(folder, pins), "--no-deps", "--no-index", "--force-reinstall",
                *map(str, wheels)]


# -- module helpers ---------------------------------------------------------------------------------------------


def _base_install_args(folder: Path, pins: Mapping[str, str]) -> list[str]:
    constraints = folder / "constraints.txt"
    constraints.write_text("".join(f"{key}=={version}\n" for key, version in sorted(pins.items())), encoding="utf-8")
    return ["install", "--no-input", "--disable-pip-version-check", "--progress-bar", "off",
            "--constraint", str(constraints)]


def _emit(on_line: LineCallback | None, line: str) -> None:
    if on_line is not None:
        on_line(line)


def _raise_if_cancelled(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise InstallCancelled()


def _pinnable(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False  # pip cannot read a pin on a non-standard version; the dry run's report still shows changes
    return True


def _packages_from_report(data: Mapping[str, Any], installed: Mapping[str, str]) -> list[PlannedPackage]:
    packages = []
    for item in data.get("install") or ():
        meta = item.get("metadata") or {}
        name, version = str(meta.get("name", "?")), str(meta.get("version", "?"))
        key = canonicalize_name(name)
        packages.append(PlannedPackage(name, version, requested=bool(item.get("requested")),
                                       direct=bool(item.get("is_direct")),
                                       requires=[str(r) for r in meta.get("requires_dist") or ()],
                                       replaces=installed.get(key)))
    return packages


def _studiolo_requirement_problem(package: PlannedPackage, studiolo_version: str,
                                  environment: Mapping[str, str]) -> str | None:
    """Why ``package`` is not a plugin for this Studiolo (no ``studiolo`` requirement, or a range without it)."""
    env = {**default_environment(), **environment, "extra": ""}
    ranges = []
    for text in package.requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) != STUDIOLO:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        ranges.append(req)
    if not ranges:
        return (f"{package.name} {package.version} is not a Studiolo plugin: it does not depend on studiolo "
                "(a plugin declares the Studiolo versions it supports, like studiolo>=0.2,<0.3).")
    if not any(req.specifier for req in ranges):
        return (f"{package.name} {package.version} does not say which Studiolo versions it supports: it depends "
                "on studiolo without a version range (a plugin declares one, like studiolo>=0.2,<0.3).")
    for req in ranges:
        if req.specifier and not req.specifier.contains(studiolo_version, prereleases=True):
            return (f"{package.name} {package.version} is made for Studiolo {req.specifier}, but this is "
                    f"Studiolo {studiolo_version}.")
    return None


def _diff(before: Mapping[str, str], after: Mapping[str, str]) -> InstallResult:
    outcome = InstallResult(False, "")
    outcome.added = {k: v for k, v in after.items() if k not in before}
    outcome.removed = {k: v for k, v in before.items() if k not in after}
    outcome.changed = {k: (before[k], v) for k, v in after.items() if k in before and before[k] != v}
    return outcome


def _unexpected(outcome: InstallResult, expected: Mapping[str, str]) -> list[str]:
    problems = [f"{k} {v} was added" for k, v in outcome.added.items() if expected.get(k) != v]
    problems += [f"{k} changed from {a} to {b}" for k, (a, b) in outcome.changed.items() if expected.get(k) != b]
    problems += [f"{k} {v} was removed" for k, v in outcome.removed.items()]
    now = {**outcome.added, **{k: b for k, (_a, b) in outcome.changed.items()}}
    problems += [f"{k} {v} was not installed" for k, v in expected.items() if now.get(k) != v]
    return problems


def _describe_changes(outcome: InstallResult) -> str:
    parts = [f"{k} {v}" for k, v in sorted(outcome.added.items())]
    parts += [f"{k} {a} → {b}" for k, (a, b) in sorted(outcome.changed.items())]
    parts += [f"removed {k} {v}" for k, v in sorted(outcome.removed.items())]
    return ", ".join(parts) or "nothing"


def _installed_plugin(key: str, inventory: Mapping[str, Mapping[str, Any]]) -> InstalledPlugin:
    info = inventory[key]
    required_by = sorted(other["name"] for other_key, other in inventory.items()
                         if other_key != key and key in other["requires"])
    return InstalledPlugin(info["name"], key, info["version"], list(info["entry_points"]), required_by)
