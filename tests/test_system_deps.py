"""scripts/system_deps.py: the system libraries Qt lacks, found with ldd, mapped to Debian packages through one
table, installed as root or named in the one command to run; and, on this machine, none missing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

SCRIPT = ROOT / "scripts" / "system_deps.py"
_spec = importlib.util.spec_from_file_location("system_deps", SCRIPT)
system_deps = sys.modules["system_deps"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(system_deps)

# What ldd printed on a fresh Debian 12 for PySide6 6.11's files (trimmed: most found libraries left out).
LDD_XCB = """\
\tlinux-vdso.so.1 (0x00007fa45061d000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007fa44fe00000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007fa4505f0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => /lib/x86_64-linux-gnu/libxkbcommon-x11.so.0 (0x00007fa4505e5000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007fa45061f000)
"""
LDD_WAYLAND = """\
\tlinux-vdso.so.1 (0x00007ff2ea6f2000)
\tlibwayland-client.so.0 => /lib/x86_64-linux-gnu/libwayland-client.so.0 (0x00007ff2ea6d0000)
\tlibwayland-cursor.so.0 => not found
\tlibwayland-cursor.so.0 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007ff2ea6f4000)
"""
LDD_MULTIMEDIA = """\
\tlinux-vdso.so.1 (0x00007fc7eb939000)
\tlibQt6Multimedia.so.6 => /venv/PySide6/Qt/plugins/multimedia/../../lib/libQt6Multimedia.so.6 (0x00007fc7eb000000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007fc7eb93b000)
\tlibpulse.so.0 => not found
"""
CLEAN = "\tlinux-vdso.so.1 (0x00007f29b3730000)\n\t/lib64/ld-linux-x86-64.so.2 (0x00007f29b3732000)\n"


def test_the_parser_collects_each_not_found_soname_once_in_order():
    assert system_deps.parse_ldd(LDD_XCB) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert system_deps.parse_ldd(LDD_WAYLAND) == ["libwayland-cursor.so.0"]
    assert system_deps.parse_ldd(LDD_MULTIMEDIA) == ["libpulse.so.0"]
    assert system_deps.parse_ldd(CLEAN) == []
    assert system_deps.parse_ldd("\tnot a dynamic executable\n") == []


@pytest.mark.parametrize(("soname", "package"), [
    ("libxcb-icccm.so.4", "libxcb-icccm4"), ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
    ("libxcb-cursor.so.0", "libxcb-cursor0"), ("libxcb-image.so.0", "libxcb-image0"),
    ("libxcb-render-util.so.0", "libxcb-render-util0"), ("libxcb-xkb.so.1", "libxcb-xkb1"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"), ("libxcb-shape.so.0", "libxcb-shape0"),
    ("libxcb-randr.so.0", "libxcb-randr0"), ("libxcb-xinerama.so.0", "libxcb-xinerama0"),
    ("libpulse.so.0", "libpulse0"), ("libEGL.so.1", "libegl1"), ("libGL.so.1", "libgl1"),
    ("libfontconfig.so.1", "libfontconfig1"), ("libdbus-1.so.3", "libdbus-1-3"),
    ("libwayland-cursor.so.0", "libwayland-cursor0"),
])
def test_the_table_maps_sonames_to_debian_packages(soname, package):
    assert system_deps.DEBIAN_PACKAGES[soname] == package


def test_the_table_holds_only_sonames_and_debian_package_names():
    for soname, package in system_deps.DEBIAN_PACKAGES.items():
        assert soname.startswith("lib") and ".so." in soname, soname
        assert package == package.lower() and " " not in package and package[0].isalnum(), package


def fake_tools(folder: Path, before: dict[str, str], after: dict[str, str] | None = None) -> dict[str, Path]:
    """A PySide6 folder with the files system_deps looks at; an ``ldd`` printing ``before[file name]`` (a clean
    output for files not named), or ``after[file name]`` once ``apt-get install`` ran; an ``apt-get`` that logs."""
    pyside = folder / "PySide6"
    for relative in ("Qt/plugins/platforms/libqxcb.so", "Qt/plugins/platforms/libqoffscreen.so",
                     "Qt/plugins/platforms/libqwayland.so", "QtWidgets.abi3.so", "QtMultimedia.abi3.so",
                     "Qt/lib/libQt6Multimedia.so.6", "Qt/plugins/multimedia/libffmpegmediaplugin.so"):
        (pyside / relative).parent.mkdir(parents=True, exist_ok=True)
        (pyside / relative).write_bytes(b"")
    for stage, outputs in (("before", before), ("after", after or {})):
        (folder / stage).mkdir()
        for name, text in outputs.items():
            (folder / stage / name).write_text(text, encoding="utf-8")
    ldd = folder / "ldd.sh"
    ldd.write_text(f"""#!/bin/sh
stage=before; [ -f "{folder}/installed" ] && stage=after
out="{folder}/$stage/$(basename "$1")"
if [ -f "$out" ]; then cat "$out"; else printf '{CLEAN}'; fi
""", encoding="utf-8")
    apt = folder / "apt-get.sh"
    apt.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/apt.log"\n'
                   f'case "$1" in install) touch "{folder}/installed";; esac\n', encoding="utf-8")
    for tool in (ldd, apt):
        tool.chmod(0o755)
    return {"pyside": pyside, "ldd": ldd, "apt": apt, "log": folder / "apt.log"}


def args(tools: dict[str, Path], *extra: str) -> list[str]:
    return ["--pyside", str(tools["pyside"]), "--ldd", str(tools["ldd"]), "--apt-get", str(tools["apt"]), *extra]


# The script run as `python scripts/system_deps.py ARGS` in a process whose user id is not root's.
AS_A_USER = "import os, runpy, sys; os.geteuid = lambda: 1000; sys.argv[0] = sys.argv.pop(1); " \
            "runpy.run_path(sys.argv[0], run_name='__main__')"


def test_not_root_it_prints_the_one_line_command_and_exits_1(tmp_path):
    tools = fake_tools(tmp_path, {"libqxcb.so": LDD_XCB})
    result = subprocess.run([sys.executable, "-c", AS_A_USER, str(SCRIPT), *args(tools)], capture_output=True,
                            text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1" in lines, result.stderr
    assert "libxcb-icccm.so.4 (libxcb-icccm4) needed by Qt platform plugin xcb" in result.stderr
    assert not tools["log"].exists()  # apt-get never ran


def test_as_root_it_installs_the_packages_and_checks_again(tmp_path, monkeypatch, capsys):
    tools = fake_tools(tmp_path, {"libqxcb.so": LDD_XCB, "libffmpegmediaplugin.so": LDD_MULTIMEDIA}, after={})
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main(args(tools)) == 0
    assert tools["log"].read_text().splitlines() == [
        "update -qq", "install -y -qq --no-install-recommends libxcb-icccm4 libxcb-keysyms1 libpulse0"]
    assert "all present now" in capsys.readouterr().err


def test_as_root_a_library_still_missing_after_the_install_fails_clearly(tmp_path, monkeypatch, capsys):
    keysyms_only = "\tlibxcb-keysyms.so.1 => not found\n"
    tools = fake_tools(tmp_path, {"libqxcb.so": LDD_XCB}, after={"libqxcb.so": keysyms_only})
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main(args(tools)) == 1
    err = capsys.readouterr().err
    assert "still missing after the install" in err and "libxcb-keysyms.so.1" in err.split("still missing")[1]


def test_a_soname_not_in_the_table_is_named_not_guessed(tmp_path, monkeypatch, capsys):
    tools = fake_tools(tmp_path, {"QtWidgets.abi3.so": "\tlibfoo-bar.so.7 => not found\n"})
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main(args(tools)) == 1
    err = capsys.readouterr().err
    assert "libfoo-bar.so.7 (no package known" in err and "apt-file search libfoo-bar.so.7" in err
    assert not tools["log"].exists()


def test_check_mode_never_installs_even_as_root(tmp_path, monkeypatch, capsys):
    tools = fake_tools(tmp_path, {"libffmpegmediaplugin.so": LDD_MULTIMEDIA})
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main(args(tools, "--check")) == 1
    assert "sudo apt-get install -y libpulse0" in capsys.readouterr().err.splitlines()
    assert not tools["log"].exists()


def test_wayland_is_optional_reported_but_neither_installed_nor_fatal(tmp_path, monkeypatch, capsys):
    tools = fake_tools(tmp_path, {"libqwayland.so": LDD_WAYLAND})
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main(args(tools)) == 0
    assert "sudo apt-get install -y libwayland-cursor0" in capsys.readouterr().err
    assert not tools["log"].exists()
    assert system_deps.main(args(tools, "--quiet")) == 0
    assert capsys.readouterr().err == ""


def test_without_apt_get_it_names_the_sonames_for_the_system_package_manager(tmp_path, monkeypatch, capsys):
    tools = fake_tools(tmp_path, {"libqxcb.so": LDD_XCB})
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dnf").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "dnf").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert system_deps.main([*args(tools)[:4], "--apt-get", "no-such-apt-get"]) == 1
    assert "sudo dnf install 'libxcb-icccm.so.4()(64bit)' 'libxcb-keysyms.so.1()(64bit)'" in capsys.readouterr().err


def test_the_make_targets_check_the_system_libraries_before_running():
    # Not only when the environment is made: `make run` and `make test` find a library removed since.
    for target, command in (("run", ".venv/bin/studiolo"), ("test", "pytest")):
        for stale in (["-W", "pyproject.toml"], ["-o", ".venv/.studiolo-installed"]):  # out of date, up to date
            output = subprocess.run(["make", "-n", *stale, target], capture_output=True, text=True, timeout=60,
                                    cwd=ROOT, check=True).stdout
            check = output.index("scripts/system_deps.py --quiet")
            assert check < output.index(command, check), output


# ------------------------------------------------------------------------------------------- this machine


def test_the_qt_platform_plugins_of_this_environment_lack_no_library():
    """CI's assertion: after the bootstrap, ldd finds everything the xcb and offscreen plugins link to."""
    platforms = system_deps.pyside_dir() / "Qt" / "plugins" / "platforms"
    for plugin in ("libqxcb.so", "libqoffscreen.so"):
        output = subprocess.run(["ldd", str(platforms / plugin)], capture_output=True, text=True, timeout=60,
                                check=True).stdout
        assert "not found" not in output, f"{plugin}:\n{output}"


def test_the_checker_finds_nothing_required_missing_here():
    result = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
