"""Installing plugins safely (desktop.install), with real pip runs in a throwaway environment (tests/pip_env.py):
a plan first, refused when it would change an installed package or does not fit this Studiolo; then the install,
checked afterwards. Nothing here touches the developer's .venv or the network."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import sysconfig
import threading
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from pip_env import PipEnv, Wheels, clean_environ, make_wheel, write_project

from desktop import __version__, paths
from desktop.install import (
    RIGHTS_NOTICE,
    Blocklist,
    InstallCancelled,
    Installer,
    Kind,
    PipRunner,
    PluginInstallError,
    acknowledge_notice,
    load_blocklist,
    notice_acknowledged,
    parse_spec,
)
from desktop.install.blocklist import shipped_path
from desktop.install.ownership import Installed, Owner, clashes, import_units
from desktop.install.pip_messages import OFFLINE, explain_failure

PLUGGY = metadata.version("pluggy")  # copied into the throwaway environment from this one


class NoPip(PipRunner):
    """A runner that fails the test if anything would run in the environment."""

    def run(self, *args, **kwargs):
        raise AssertionError("pip ran")

    def python_json(self, *args, **kwargs):
        raise AssertionError("the environment was inspected")


class ConstraintsSeen(PipRunner):
    """A runner that keeps, for each pip run, the constraints file pip was given, as {name: version}."""

    def __init__(self, plain: PipRunner) -> None:
        super().__init__(plain.python, index_args=plain.index_args, env=plain.env)
        self.constraints: list[dict[str, str]] = []

    def run(self, args, **kwargs):
        if "--constraint" in args:
            text = Path(args[list(args).index("--constraint") + 1]).read_text(encoding="utf-8")
            self.constraints.append(dict(line.split("==", 1) for line in text.splitlines()))
        return super().run(args, **kwargs)


# -- the environment's freeze -------------------------------------------------------------------------------


def test_freeze_pins_the_editable_studiolo_by_version():
    """The developer's environment has Studiolo as an editable install: it is listed by name and version (pip's
    own freeze writes `-e <path>`, which a constraints file does not accept). Read-only."""
    frozen = PipRunner(sys.executable, env=clean_environ()).freeze()
    assert frozen["studiolo"] == __version__
    assert frozen["pluggy"] and frozen["pip"]
    assert all(k == k.lower() and "_" not in k for k in frozen)


def test_the_throwaway_environment_is_not_the_developers(pip_env: PipEnv):
    frozen = pip_env.freeze()
    assert set(frozen) == {"pip", "setuptools", "pluggy", "filelock", "packaging", "studiolo"}
    assert frozen["studiolo"] == __version__
    ours = Path(sysconfig.get_paths()["purelib"]).resolve()  # the .venv's site-packages
    code = "import json, sys, sysconfig\nprint(json.dumps([sys.prefix, sysconfig.get_paths()['purelib'], sys.path]))"
    theirs = json.loads(pip_env.run_python(code))
    assert Path(theirs[0]).resolve() != Path(sys.prefix).resolve() and Path(theirs[1]).resolve() != ours
    assert ours not in {Path(p).resolve() for p in theirs[2] if p}  # it cannot see, nor install into, the .venv


# -- installs that work -----------------------------------------------------------------------------------


def test_install_from_a_wheel(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    before = pip_env.freeze()
    lines: list[str] = []
    plan = installer.plan(str(wheels.wheel("studiolo-hello")), on_line=lines.append)
    assert plan.ok, plan.reasons
    assert [(p.name, p.version, p.requested, p.direct) for p in plan.packages] == \
        [("studiolo-hello", "1.0", True, True)]
    assert plan.studiolo_version == __version__ and plan.pins["studiolo"] == __version__
    assert plan.pins == before  # every installed distribution is pinned at its installed version
    assert pip_env.freeze() == before  # planning changed nothing
    assert any("Would install studiolo-hello-1.0" in line for line in lines)

    result = installer.install(plan, on_line=lines.append)
    assert result.ok and result.installed, result.message
    assert result.added == {"studiolo-hello": "1.0"} and not result.changed and not result.removed
    assert result.entry_points == ["hello = studiolo_hello"] and not result.import_errors
    assert "Installed studiolo-hello 1.0" in result.message and "hello" in result.message
    assert any("Successfully installed studiolo-hello-1.0" in line for line in lines)
    assert pip_env.entry_points()["hello"] == "studiolo-hello"  # the target Python sees the plugin
    assert pip_env.freeze() == {**before, "studiolo-hello": "1.0"}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its content, by relative path (folders too, as empty content)."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}


def test_install_from_a_folder_builds_outside_it_and_installs_what_was_checked(pip_env: PipEnv, tmp_path: Path):
    folder = write_project(tmp_path, "studiolo-hello")
    (folder / "build").mkdir()  # an earlier build's leftovers are not packaged
    (folder / "build" / "stale.py").write_text("raise RuntimeError('stale')\n")
    before = snapshot(folder)
    installer = pip_env.installer()
    plan = installer.plan(str(folder))
    assert plan.request.kind == Kind.FOLDER and plan.request.name == "studiolo-hello"
    assert plan.ok, plan.reasons
    assert snapshot(folder) == before  # the dry run and the build wrote nothing (no build/, no *.egg-info) there
    work = plan.work
    assert work is not None and [p.wheel.name for p in plan.packages] == ["studiolo_hello-1.0-py3-none-any.whl"]
    assert "stale.py" not in str(zipfile.ZipFile(plan.packages[0].wheel).namelist())

    (folder / "studiolo_hello.py").write_text("raise RuntimeError('edited after the check')\n")  # not installed
    result = installer.install(plan)
    assert result.ok, result.message
    assert pip_env.entry_points()["hello"] == "studiolo-hello"
    assert "edited" not in (pip_env.site_packages / "studiolo_hello.py").read_text()
    assert snapshot(folder) == {**before, "studiolo_hello.py": b"raise RuntimeError('edited after the check')\n"}
    plan.discard()
    assert not work.exists()
    with pytest.raises(PluginInstallError, match="checked packages are gone"):
        installer.install(plan)


def test_install_by_name_brings_new_dependencies_and_uninstall_leaves_them(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    plan = installer.plan("studiolo-helper-user")
    assert plan.ok, plan.reasons
    assert plan.summary() == ["studiolo-helper-user 1.0 (the plugin)", "helper-lib 1.0 (a new dependency)"]
    result = installer.install(plan)
    assert result.ok and result.added == {"studiolo-helper-user": "1.0", "helper-lib": "1.0"}, result.message

    with pytest.raises(PluginInstallError, match="helper-lib 1.0 is not a Studiolo plugin"):
        installer.uninstall("helper-lib")
    before = pip_env.freeze()
    done = installer.uninstall("helper_user")  # by its plugin name; its package name works too
    assert done.ok and done.removed == {"studiolo-helper-user": "1.0"}, done.message
    after = pip_env.freeze()
    assert after == {k: v for k, v in before.items() if k != "studiolo-helper-user"}
    assert "helper-lib" in after and "helper_user" not in pip_env.entry_points()


def test_pip_gets_every_installed_distribution_pinned(pip_env: PipEnv, wheels: Wheels):
    runner = ConstraintsSeen(pip_env.runner(wheels.main))
    installer = Installer(runner, build_isolation=False)
    before = pip_env.freeze()
    assert installer.install(installer.plan("studiolo-helper-user")).ok
    planned, installed = runner.constraints
    assert planned == before  # the dry run: everything installed, at its version
    assert installed == {**before, "studiolo-helper-user": "1.0", "helper-lib": "1.0"}  # and exactly the plan


def test_installing_what_is_installed_does_nothing(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    assert installer.install(installer.plan("studiolo-hello")).ok
    before = pip_env.freeze()
    plan = installer.plan("studiolo-hello")
    assert plan.ok and plan.nothing_to_do and plan.note == "studiolo-hello 1.0 is already installed."
    assert installer.install(plan).ok and pip_env.freeze() == before


def test_update_changes_only_that_plugin(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main, wheels.v2)
    assert installer.install(installer.plan(str(wheels.wheel("studiolo-hello")))).ok
    before = pip_env.freeze()
    plan = installer.plan_update("hello")
    assert plan.ok and plan.upgrade, plan.reasons
    assert plan.summary() == ["studiolo-hello 1.0 → 1.1 (the plugin)"]
    assert plan.pins == {k: v for k, v in before.items() if k != "studiolo-hello"}  # all pinned but the plugin
    result = installer.install(plan)
    assert result.ok and result.changed == {"studiolo-hello": ("1.0", "1.1")}, result.message
    assert pip_env.freeze() == {**before, "studiolo-hello": "1.1"}
    again = installer.plan_update("studiolo-hello")
    assert again.nothing_to_do and "newest" in (again.note or "")
    with pytest.raises(PluginInstallError, match="built-in plugin"):
        installer.plan_update("image")


# -- refused before anything changes ------------------------------------------------------------------------


def test_a_constraint_violation_is_refused_with_nothing_changed(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    before = pip_env.freeze()
    plan = installer.plan(str(wheels.wheel("studiolo-old-pluggy")))
    assert not plan.ok
    assert plan.reasons == [f"studiolo-old-pluggy 1.0 needs pluggy<0.1, but pluggy {PLUGGY} is installed."]
    assert "does not change packages that are already installed" in (plan.hint or "")
    assert len(plan.log) > len(plan.reasons)  # pip's whole log stays available; the reasons are the summary
    with pytest.raises(PluginInstallError, match="needs pluggy<0.1"):
        installer.install(plan)
    assert pip_env.freeze() == before


@pytest.mark.parametrize(("name", "declared"), [("studiolo-future", ">=9,<10"), ("studiolo-api-one", ">=0.1,<0.2")])
def test_an_incompatible_studiolo_range_is_refused_naming_both_versions(pip_env: PipEnv, wheels: Wheels, name,
                                                                        declared):
    before = pip_env.freeze()  # a plugin made for API 0.1 (<0.2) is refused by this Studiolo (API 0.2)
    plan = pip_env.installer(wheels.main).plan(name)
    assert not plan.ok
    assert plan.reasons == [f"{name} 1.0 is made for Studiolo {declared}, but this is Studiolo {__version__}."]
    assert "made for this Studiolo" in (plan.hint or "")
    assert pip_env.freeze() == before


def test_a_package_that_does_not_depend_on_studiolo_is_refused(pip_env: PipEnv, wheels: Wheels):
    before = pip_env.freeze()
    plan = pip_env.installer(wheels.main).plan(str(wheels.wheel("not-a-plugin")))
    assert not plan.ok and plan.reasons == [
        "not-a-plugin 1.0 is not a Studiolo plugin: it does not depend on studiolo (a plugin declares the "
        "Studiolo versions it supports, like studiolo>=0.2,<0.3)."]
    assert pip_env.freeze() == before


def test_a_plugin_that_depends_on_studiolo_without_a_range_is_refused(pip_env: PipEnv, tmp_path: Path):
    before = pip_env.freeze()
    folder = write_project(tmp_path, "studiolo-any-version", dependencies=["studiolo"])
    plan = pip_env.installer().plan(str(folder))
    assert not plan.ok and plan.reasons == [
        "studiolo-any-version 1.0 does not say which Studiolo versions it supports: it depends on studiolo without "
        "a version range (a plugin declares one, like studiolo>=0.2,<0.3)."]
    assert pip_env.freeze() == before


def test_asking_for_another_version_of_an_installed_package_is_refused(pip_env: PipEnv, wheels: Wheels):
    plan = pip_env.installer(wheels.main).plan("pluggy==0.5")
    assert not plan.ok and plan.reasons == [f"You asked for pluggy==0.5, but pluggy {PLUGGY} is installed."]
    with pytest.raises(PluginInstallError, match="Studiolo itself is not a plugin"):
        pip_env.installer(wheels.main).plan("studiolo==0.2")


def test_a_package_that_does_not_exist(pip_env: PipEnv, wheels: Wheels):
    before = pip_env.freeze()
    plan = pip_env.installer(wheels.empty).plan("studiolo-no-such-plugin")
    assert not plan.ok
    assert plan.reasons == ["No package named studiolo-no-such-plugin was found in the folders searched."]
    versions = pip_env.installer(wheels.main).plan("studiolo-hello>=2")
    assert versions.reasons == ["No version of studiolo-hello matches >=2; available: 1.0."]
    assert pip_env.freeze() == before


def test_offline_says_so_and_suggests_a_file(pip_env: PipEnv):
    # A port bound but not listening refuses connections: an index that cannot be reached, on this machine.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        index = f"http://127.0.0.1:{closed.getsockname()[1]}/simple"
        installer = pip_env.installer(index_args=["--index-url", index, "--retries", "1", "--timeout", "2"])
        plan = installer.plan("studiolo-hello")
    assert not plan.ok and plan.reasons == [OFFLINE]
    assert OFFLINE == "offline: could not reach the package index; install from a file instead"


def test_a_wheel_for_another_platform(pip_env: PipEnv, wheels: Wheels):
    before = pip_env.freeze()
    plan = pip_env.installer().plan(str(wheels.foreign / "studiolo_hello-1.0-py3-none-win_arm64.whl"))
    assert not plan.ok
    assert plan.reasons == ["studiolo_hello-1.0-py3-none-win_arm64.whl is a wheel for another platform or Python "
                            "(it is made for py3 on win_arm64); it cannot be installed on this computer."]
    assert pip_env.freeze() == before


def test_a_folder_whose_metadata_cannot_be_built_is_refused(pip_env: PipEnv, wheels: Wheels):
    before = pip_env.freeze()
    plan = pip_env.installer().plan(str(wheels.projects / "studiolo-failmeta-1.0"))
    assert not plan.ok and len(plan.reasons) == 1
    assert "could not be built (pip failed while preparing its metadata): RuntimeError: setup.py refuses to run" \
        in plan.reasons[0]
    assert pip_env.freeze() == before


# -- import-name safety: a plugin's files stay out of packages other distributions own ---------------------------


@pytest.mark.parametrize(("files", "reason"), [
    ({"desktop/__init__.py": "", "studiolo_evil.py": ""},  # Studiolo's own package (its top_level.txt)
     "studiolo-evil 1.0 would write files into desktop, which belongs to studiolo {studiolo}."),
    ({"plugins/evil.py": ""},  # no __init__.py of its own: still inside Studiolo's package
     "studiolo-evil 1.0 would write files into plugins, which belongs to studiolo {studiolo}."),
    ({"pluggy/_extra.py": ""},  # a package an installed distribution's RECORD lists
     "studiolo-evil 1.0 would write files into pluggy, which belongs to pluggy {pluggy}."),
    ({"studiolo_evil-1.0.data/purelib/filelock/__init__.py": ""},  # a wheel's .data/purelib is site-packages
     "studiolo-evil 1.0 would write files into filelock, which belongs to filelock {filelock}."),
])
def test_a_wheel_writing_into_another_distributions_package_is_refused(pip_env: PipEnv, tmp_path: Path,
                                                                       files: dict[str, str], reason: str):
    wheel = make_wheel(tmp_path, "studiolo-evil", files=files, entry_points={"evil": "studiolo_evil"})
    before = pip_env.freeze()
    plan = pip_env.installer().plan(str(wheel))
    assert not plan.ok
    assert plan.reasons == [reason.format(studiolo=__version__, pluggy=PLUGGY, filelock=metadata.version("filelock"))]
    assert "a package of its own" in (plan.hint or "") and plan.work is None
    with pytest.raises(PluginInstallError, match="would write files into"):
        pip_env.installer().install(plan)
    assert pip_env.freeze() == before


def test_a_folder_with_a_package_named_plugins_is_refused(pip_env: PipEnv, tmp_path: Path):
    """Built (out of the folder) in the dry run, and its wheel's files checked."""
    folder = write_project(tmp_path, "studiolo-mine", packages=["plugins"])
    before_folder = snapshot(folder)
    plan = pip_env.installer().plan(str(folder))
    assert not plan.ok
    assert plan.reasons == [
        f"studiolo-mine 1.0 would write files into plugins, which belongs to studiolo {__version__}."]
    assert snapshot(folder) == before_folder


def test_shared_namespace_folders_stay_shared(pip_env: PipEnv, tmp_path: Path):
    """A folder without __init__.py (a namespace package) may be shared; making it one's own package may not."""
    lib = make_wheel(tmp_path / "lib", "acme-one", files={"acme/one/__init__.py": ""}, requires=())
    assert pip_env.pip("install", "--no-deps", "--no-index", str(lib)).returncode == 0
    installer = pip_env.installer()
    shares = make_wheel(tmp_path / "a", "studiolo-two", files={"acme/two/__init__.py": "", "studiolo_two.py": ""},
                        entry_points={"two": "studiolo_two"})
    assert installer.plan(str(shares)).ok
    takes = make_wheel(tmp_path / "b", "studiolo-two", files={"acme/__init__.py": "", "studiolo_two.py": ""},
                       entry_points={"two": "studiolo_two"})
    plan = installer.plan(str(takes))
    assert plan.reasons == ["studiolo-two 1.0 would make acme its own package, but acme-one 1.0 has acme.one there."]
    inside = make_wheel(tmp_path / "c", "studiolo-two", files={"acme/one/more.py": "", "studiolo_two.py": ""},
                        entry_points={"two": "studiolo_two"})
    assert installer.plan(str(inside)).reasons == [
        "studiolo-two 1.0 would write files into acme.one, which belongs to acme-one 1.0."]


def test_import_units_and_clashes():
    assert import_units(["a/__init__.py", "a/b/c.py", "m.py", "x.cpython-311-x86_64-linux-gnu.so", "ns/p/__init__.py",
                         "ns/p/q.py", "ns/data.json", "d-1.0.dist-info/RECORD", "../../bin/tool",
                         "a/__pycache__/c.cpython-311.pyc", "/abs/path.py"]) == {
        ("a",), ("m",), ("x",), ("ns", "p"), ("ns", "data.json")}
    # A package folder several installed distributions ship (every CUDA wheel's nvidia/__init__.py) is shared.
    shared = {("nvidia",)}
    one = Owner("nvidia-one", "1", frozenset(import_units(["nvidia/__init__.py", "nvidia/one/__init__.py"], shared)))
    two = Owner("nvidia-two", "1", frozenset(import_units(["nvidia/__init__.py", "nvidia/two/x.py"], shared)))
    assert one.units == {("nvidia", "one")} and two.units == {("nvidia", "two", "x")}
    installed = Installed([one], frozenset(shared))
    assert clashes([two], installed) == []
    into = Owner("nvidia-three", "1", frozenset(import_units(["nvidia/one/x.py"], shared)))
    assert clashes([two, into], installed) == ["nvidia-three 1 would write files into nvidia.one, which belongs to "
                                               "nvidia-one 1."]


# -- installs that fail or turn out wrong ---------------------------------------------------------------------


def test_a_folder_whose_wheel_cannot_be_built_is_refused_before_the_install(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer()
    before = pip_env.freeze()
    plan = installer.plan(str(wheels.projects / "studiolo-failbuild-1.0"))  # its metadata builds; its wheel does not
    assert not plan.ok and len(plan.reasons) == 1
    assert "could not be built (pip failed while building it): RuntimeError: this plugin cannot be built here." \
        in plan.reasons[0]
    with pytest.raises(PluginInstallError, match="could not be built"):
        installer.install(plan)
    assert pip_env.freeze() == before


def test_a_package_without_an_entry_point_is_removed_again(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    before = pip_env.freeze()
    plan = installer.plan("studiolo-no-entry")
    assert plan.ok, plan.reasons  # it declares a Studiolo range: only the installed files show it is no plugin
    result = installer.install(plan)
    assert not result.ok and not result.installed
    assert result.message == ("studiolo-no-entry 1.0 is not a Studiolo plugin: it has no 'studiolo' entry point. "
                              "It was uninstalled again; nothing was changed.")
    assert pip_env.freeze() == before


@pytest.mark.parametrize(("name", "error"), [
    ("raises", "import failed: RuntimeError: broken on purpose"),
    ("badhook", "register_generators failed: RuntimeError: boom in hook"),
    ("badgen", "register_generators failed: PluginError: Echo was registered as a class; register an instance: "
               "register(Echo())."),
])
def test_a_plugin_that_fails_to_load_is_uninstalled_again(pip_env: PipEnv, wheels: Wheels, name: str, error: str):
    """The check after the install loads the plugin as Studiolo would: imported, registered, its
    register_generators hook called and the generators it registers checked; any failure takes the install back."""
    installer = pip_env.installer(wheels.main)
    before = pip_env.freeze()
    lines: list[str] = []
    plan = installer.plan(f"studiolo-{name}")
    assert plan.ok, plan.reasons
    result = installer.install(plan, on_line=lines.append)
    assert not result.ok and not result.installed
    assert result.import_errors == {name: error}
    assert "Traceback" in result.tracebacks[name]
    assert result.message == (f"studiolo-{name} 1.0 fails to load in Studiolo (plugin {name}: {error}). It was "
                              "uninstalled again; nothing was changed.")
    assert "Installed" not in result.message and "Studiolo installs only plugins that load" in (result.hint or "")
    assert f"==> Plugin {name} fails to load: {error}" in lines and "Traceback (most recent call last):" in lines
    assert pip_env.freeze() == before


def test_install_refuses_when_the_environment_changed_since_the_plan(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    plan = installer.plan(str(wheels.wheel("studiolo-hello")))
    assert installer.install(installer.plan("studiolo-helper-user")).ok
    with pytest.raises(PluginInstallError, match="changed since the install was checked"):
        installer.install(plan)


def test_cancel_before_the_install_and_during_the_dry_run(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    before = pip_env.freeze()
    plan = installer.plan("studiolo-helper-user")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(InstallCancelled, match="nothing was changed"):
        installer.install(plan, cancel=cancel)

    cancel = threading.Event()
    seen: list[str] = []

    def on_line(line: str) -> None:
        seen.append(line)
        if line.startswith("Looking in links"):  # pip has started its dry run
            cancel.set()

    with pytest.raises(InstallCancelled):
        installer.plan("studiolo-helper-user", on_line=on_line, cancel=cancel)
    assert not any(line.startswith("Would install") for line in seen)
    assert pip_env.freeze() == before


# -- uninstall --------------------------------------------------------------------------------------------


def test_uninstall_takes_only_plugins(pip_env: PipEnv, wheels: Wheels):
    installer = pip_env.installer(wheels.main)
    assert installer.install(installer.plan("studiolo-hello")).ok
    assert [p.name for p in installer.plugins()] == ["studiolo-hello"]
    before = pip_env.freeze()
    for name, refusal in [("studiolo", "Studiolo itself cannot be"), ("image", "built-in plugin"),
                          ("pluggy", "not a Studiolo plugin"), ("studiolo-nope", "No installed plugin"),
                          ("../hello", "is not a package name"), ("-y", "option")]:
        with pytest.raises(PluginInstallError, match=refusal):
            installer.uninstall(name)
    assert pip_env.freeze() == before
    done = installer.uninstall("Studiolo_Hello")
    assert done.ok and done.removed == {"studiolo-hello": "1.0"} and "Uninstalled studiolo-hello 1.0" in done.message
    assert pip_env.freeze() == {k: v for k, v in before.items() if k != "studiolo-hello"}


def test_a_plugin_another_one_needs_is_not_uninstalled(pip_env: PipEnv, tmp_path: Path):
    # A dependency that is itself a plugin: taking it out would break the plugin that needs it.
    base = write_project(tmp_path, "studiolo-base")
    user = write_project(tmp_path, "studiolo-on-base", dependencies=["studiolo>=0.2,<0.3", "studiolo-base"])
    installer = pip_env.installer()
    assert installer.install(installer.plan(str(base))).ok
    assert installer.install(installer.plan(str(user))).ok
    with pytest.raises(PluginInstallError, match="studiolo-base is needed by studiolo-on-base"):
        installer.uninstall("studiolo-base")


# -- the blocklist --------------------------------------------------------------------------------------------


def test_the_shipped_blocklist_is_valid_and_refuses_before_pip_runs():
    raw = json.loads(shipped_path().read_text(encoding="utf-8"))
    assert raw["version"] == 1 and raw["entries"] and all(e["reason"] for e in raw["entries"])
    blocklist = load_blocklist()
    assert not blocklist.warnings
    reason = blocklist.check("Studiolo_Diffusers.Free", "3.0")
    assert reason and reason.startswith("Studiolo_Diffusers.Free 3.0 is on Studiolo's blocklist: reserved name")
    assert blocklist.check("studiolo-markov", "1.0") is None
    plan = Installer(NoPip()).plan("studiolo-diffusers-free")
    assert not plan.ok and "on Studiolo's blocklist" in plan.reasons[0]


def test_a_user_blocklist_updates_the_shipped_one(pip_env: PipEnv, wheels: Wheels):
    user = paths.config_dir() / "plugin-blocklist.json"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(json.dumps({"version": 1, "updated": "2027-01-01", "entries": [
        {"name": "studiolo-hello", "versions": "<1.1", "reason": "1.0 deletes the gallery"},
        {"name": "helper-lib", "versions": "*", "reason": "mines coins"},
        {"name": "studio1o", "versions": "<0", "reason": "narrowed"},
    ]}), encoding="utf-8")
    blocklist = load_blocklist()
    assert blocklist.updated == "2027-01-01"
    assert blocklist.check("studio1o", "1.0") is None  # the user copy's entry replaced the shipped one
    assert blocklist.check("studiolo-diffusers-free")  # the other shipped entries still apply
    installer = pip_env.installer(wheels.main, wheels.v2)
    before = pip_env.freeze()
    plan = installer.plan("studiolo-hello==1.0")  # the version is known before pip runs
    assert not plan.ok and plan.reasons == ["studiolo-hello 1.0 is on Studiolo's blocklist: 1.0 deletes the gallery"]
    assert not plan.log  # refused before pip ran
    assert installer.plan("studiolo-hello").ok  # 1.1 is not on the list
    plan = pip_env.installer(wheels.main).plan("studiolo-helper-user")  # a dependency on the list
    assert not plan.ok and plan.reasons == ["helper-lib 1.0 is on Studiolo's blocklist: mines coins"]
    local = pip_env.installer(wheels.main).plan(str(wheels.wheel("studiolo-hello")))  # found in the dry run's report
    assert not local.ok and "1.0 deletes the gallery" in local.reasons[0]
    assert pip_env.freeze() == before

    user.write_text("{not json", encoding="utf-8")
    broken = load_blocklist()
    assert broken.check("studiolo-hello", "1.0") is None and broken.check("studio1o", "1.0")
    assert broken.warnings and "was ignored" in broken.warnings[0]


def test_blocklist_entries_and_versions():
    blocklist = Blocklist.from_json({"version": 1, "entries": [
        {"name": "Bad.Pkg", "versions": ">=2,<2.3", "reason": "r"}]}, "test")
    assert blocklist.check("bad-pkg", "2.1") and blocklist.check("BAD_pkg", "2.2.9")
    assert blocklist.check("bad-pkg", "2.3") is None and blocklist.check("bad-pkg", "1.9") is None
    assert blocklist.check("bad-pkg") is None  # an unknown version is refused only by a "*" entry
    for bad in ({"version": 2, "entries": []}, {"version": 1}, {"version": 1, "entries": [{"name": "x"}]},
                {"version": 1, "entries": [{"name": "x", "versions": "~~1", "reason": "r"}]}):
        with pytest.raises(ValueError):
            Blocklist.from_json(bad, "test")


# -- what may be asked for -------------------------------------------------------------------------------------


HOSTILE = [
    ("--index-url=http://evil", "option for pip"),
    ("-e .", "option for pip"),
    ("-r requirements.txt", "option for pip"),
    ("foo; rm -rf /", "contains ';'"),
    ("foo ; python_version>'3'", "contains ';'"),
    ("../../x", "no file or folder"),
    ("foo @ http://x", "direct reference"),
    ("foo@file:///etc", "direct reference"),
    ("https://example.invalid/x.whl", "is a URL"),
    ("git+https://example.invalid/x", "is a URL"),
    ("foo bar", "several names"),
    ("foo --pre", "not a package name"),
    ("", "Nothing to install"),
    ("   ", "Nothing to install"),
    ("a" * 201, "at most 200"),
    ("$(touch /tmp/x)", "'$'"),
    ("foo`id`", "'`'"),
    ("foo|bar", "'|'"),
    ("foo&&bar", "'&'"),
    ("foo\nbar", "'\\n'"),
    ("foo==1.0\x00", "'\\x00'"),
    ("fóó", "not allowed in a package name"),
    ("x.whl", "no file or folder"),
]


@pytest.mark.parametrize(("spec", "why"), HOSTILE)
def test_hostile_specs_are_refused_before_pip_runs(spec: str, why: str):
    with pytest.raises(PluginInstallError) as refused:
        Installer(NoPip()).plan(spec)
    assert why in refused.value.message


def test_acceptable_specs(tmp_path: Path, wheels: Wheels):
    assert parse_spec("studiolo-markov").arg == "studiolo-markov"
    spec = parse_spec(" Studiolo_Markov >=1.0, <2 ")
    assert (spec.kind, spec.arg, spec.name, spec.version) == (Kind.REQUIREMENT, "Studiolo_Markov<2,>=1.0",
                                                             "studiolo-markov", None)
    assert parse_spec("studiolo-markov==1.2").version == "1.2"
    wheel = parse_spec(str(wheels.wheel("studiolo-hello")))
    assert (wheel.kind, wheel.name, wheel.version) == (Kind.WHEEL, "studiolo-hello", "1.0")
    folder = shutil.copytree(wheels.projects / "studiolo-hello-1.0", tmp_path / "my plugins" / "hello")
    relative = parse_spec("hello", cwd=folder.parent)  # a bare word is a name, never a folder
    assert relative.kind == Kind.REQUIREMENT
    spec = parse_spec("./hello", cwd=folder.parent)
    assert (spec.kind, spec.arg, spec.name) == (Kind.FOLDER, str(folder), "studiolo-hello")
    (tmp_path / "not-a-project").mkdir()
    with pytest.raises(PluginInstallError, match="not a Python project"):
        parse_spec(str(tmp_path / "not-a-project"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PluginInstallError, match="is not a wheel"):
        parse_spec(str(tmp_path / "notes.txt"))
    (tmp_path / "bad.whl").write_text("x")
    with pytest.raises(PluginInstallError, match="not a valid wheel file name"):
        parse_spec(str(tmp_path / "bad.whl"))


def test_a_folder_with_a_space_in_its_path_installs(pip_env: PipEnv, wheels: Wheels, tmp_path: Path):
    folder = shutil.copytree(wheels.projects / "studiolo-hello-1.0", tmp_path / "my plugins" / "hello")
    installer = pip_env.installer()
    result = installer.install(installer.plan(str(folder)))
    assert result.ok, result.message


# -- messages and the rights notice ---------------------------------------------------------------------------


def test_an_unreachable_index_is_told_apart_from_a_missing_package():
    request = parse_spec("studiolo-x")
    missing = ["ERROR: Could not find a version that satisfies the requirement studiolo-x (from versions: none)",
               "ERROR: No matching distribution found for studiolo-x"]
    assert explain_failure(missing, request=request, installed={}).reasons == [
        "No package named studiolo-x was found on the package index."]
    offline = ["WARNING: Retrying (Retry(total=0)) after connection broken by 'NewConnectionError(...: Failed to "
               "establish a new connection: [Errno -3] Temporary failure in name resolution)': /simple/studiolo-x/",
               *missing]
    assert explain_failure(offline, request=request, installed={}).reasons == [OFFLINE]


def test_the_rights_notice_is_acknowledged_once(studiolo_home: Path):
    assert "runs with your rights" in RIGHTS_NOTICE
    assert not notice_acknowledged()
    acknowledge_notice()
    assert notice_acknowledged()
    assert (paths.config_dir() / "plugin-install.json").is_file()
    assert not (paths.config_dir() / "settings.json").exists()  # the settings file is not touched
