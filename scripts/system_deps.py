"""The system libraries Qt needs: find the ones missing, install them (root, Debian/Ubuntu) or say how.

PySide6's wheels bundle Qt but not the system libraries Qt links to (X11/xcb, GL, fonts, PulseAudio…). A missing
one surfaces late and misleadingly: Qt says "could not load the Qt platform plugin xcb" and names a library that
is installed. This script asks the dynamic loader instead: ``ldd`` on the installed PySide6's files, "not found"
lines collected, each soname mapped to its Debian/Ubuntu package through :data:`DEBIAN_PACKAGES` (the one table).

What is checked (Linux only; elsewhere the wheels carry what they need):

* required — the ``xcb`` platform plugin (the window under X11, and under Wayland through XWayland), the
  ``offscreen`` platform plugin (the test suite) and the QtWidgets binding;
* required when PySide6-Addons is installed (the ``audio`` extra) — QtMultimedia: its library, its binding and its
  ``multimedia/`` plugins (audio playback);
* optional — the native ``wayland`` platform plugin: Qt falls back to xcb when it cannot load, so its missing
  libraries are only reported, with the command that adds them.

Run by the project's environment (``scripts/bootstrap.sh``, ``make run``, ``make test``)::

    .venv/bin/python scripts/system_deps.py            # install what is missing as root, else print the command
    .venv/bin/python scripts/system_deps.py --check    # never install: exit 1 when something required is missing

Exit status: 0 nothing required missing, 1 something is (the message says what and the command to run),
2 usage. Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# soname -> the Debian/Ubuntu package that ships it. Checked against Debian 12 (dpkg -S on the installed files,
# dpkg -c on the downloaded .debs); Ubuntu uses the same names (its 64-bit-time renames such as libglib2.0-0t64
# provide the old name, which apt-get accepts). A soname not listed here is reported by name, never guessed.
DEBIAN_PACKAGES: dict[str, str] = {
    # X11 and xcb (the xcb platform plugin)
    "libX11.so.6": "libx11-6",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libXau.so.6": "libxau6",
    "libXdmcp.so.6": "libxdmcp6",
    "libXext.so.6": "libxext6",
    "libXfixes.so.3": "libxfixes3",
    "libXi.so.6": "libxi6",
    "libXrandr.so.2": "libxrandr2",
    "libXrender.so.1": "libxrender1",
    "libXcursor.so.1": "libxcursor1",
    "libSM.so.6": "libsm6",
    "libICE.so.6": "libice6",
    "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxcb-ewmh.so.2": "libxcb-ewmh2",
    "libxcb-glx.so.0": "libxcb-glx0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-present.so.0": "libxcb-present0",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xinerama.so.0": "libxcb-xinerama0",
    "libxcb-xinput.so.0": "libxcb-xinput0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    # Wayland (the optional wayland platform plugin)
    "libwayland-client.so.0": "libwayland-client0",
    "libwayland-cursor.so.0": "libwayland-cursor0",
    "libwayland-egl.so.1": "libwayland-egl1",
    "libwayland-server.so.0": "libwayland-server0",
    # OpenGL/EGL (QtGui)
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libGLX.so.0": "libglx0",
    "libGLdispatch.so.0": "libglvnd0",
    "libOpenGL.so.0": "libopengl0",
    "libdrm.so.2": "libdrm2",
    "libgbm.so.1": "libgbm1",
    # fonts, text, images, compression (QtGui)
    "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6",
    "libpng16.so.16": "libpng16-16",
    "libexpat.so.1": "libexpat1",
    "libbrotlicommon.so.1": "libbrotli1",
    "libbrotlidec.so.1": "libbrotli1",
    "libz.so.1": "zlib1g",
    "libzstd.so.1": "libzstd1",
    "liblz4.so.1": "liblz4-1",
    "liblzma.so.5": "liblzma5",
    "libbz2.so.1": "libbz2-1.0",
    # GLib, D-Bus, system (QtCore, QtGui)
    "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libgobject-2.0.so.0": "libglib2.0-0",
    "libgio-2.0.so.0": "libglib2.0-0",
    "libgmodule-2.0.so.0": "libglib2.0-0",
    "libpcre2-8.so.0": "libpcre2-8-0",
    "libffi.so.8": "libffi8",
    "libdbus-1.so.3": "libdbus-1-3",
    "libsystemd.so.0": "libsystemd0",
    "libudev.so.1": "libudev1",
    "libcap.so.2": "libcap2",
    "libgcrypt.so.20": "libgcrypt20",
    "libgpg-error.so.0": "libgpg-error0",
    "libbsd.so.0": "libbsd0",
    "libmd.so.0": "libmd0",
    "libstdc++.so.6": "libstdc++6",
    "libgcc_s.so.1": "libgcc-s1",
    # Kerberos (QtNetwork, pulled in by QtMultimedia)
    "libgssapi_krb5.so.2": "libgssapi-krb5-2",
    "libkrb5.so.3": "libkrb5-3",
    "libk5crypto.so.3": "libk5crypto3",
    "libkrb5support.so.0": "libkrb5support0",
    "libcom_err.so.2": "libcom-err2",
    "libkeyutils.so.1": "libkeyutils1",
    # audio (QtMultimedia)
    "libpulse.so.0": "libpulse0",
    "libpulse-simple.so.0": "libpulse0",
    "libpulse-mainloop-glib.so.0": "libpulse-mainloop-glib0",
    "libasound.so.2": "libasound2",
}

_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


@dataclass(frozen=True)
class QtFile:
    """One file of the installed PySide6 to ask ``ldd`` about: what it is for, and whether Studiolo needs it."""

    purpose: str
    path: Path
    required: bool


@dataclass(frozen=True)
class Missing:
    """A soname the loader cannot find, the files that need it, and its Debian package (None: not in the table)."""

    soname: str
    needed_by: tuple[str, ...]
    required: bool

    @property
    def package(self) -> str | None:
        return DEBIAN_PACKAGES.get(self.soname)


def parse_ldd(output: str) -> list[str]:
    """The sonames an ``ldd`` output reports as "not found", in order, each once."""
    found: dict[str, None] = {}
    for line in output.splitlines():
        match = _NOT_FOUND.match(line)
        if match:
            found.setdefault(match.group(1))
    return list(found)


def pyside_dir() -> Path | None:
    """The installed PySide6 package folder, found without importing it (None when it is not installed)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def qt_files(pyside: Path) -> list[QtFile]:
    """The files of ``pyside`` (a PySide6 package folder) whose libraries matter, required ones first."""
    plugins = pyside / "Qt" / "plugins"
    files = [
        QtFile("Qt platform plugin xcb (the window)", plugins / "platforms" / "libqxcb.so", True),
        QtFile("Qt platform plugin offscreen (the tests)", plugins / "platforms" / "libqoffscreen.so", True),
        QtFile("QtWidgets", pyside / "QtWidgets.abi3.so", True),
    ]
    if (pyside / "QtMultimedia.abi3.so").exists():  # PySide6-Addons, brought by the audio extra
        files.append(QtFile("QtMultimedia (audio playback)", pyside / "QtMultimedia.abi3.so", True))
        files.append(QtFile("QtMultimedia (audio playback)", pyside / "Qt" / "lib" / "libQt6Multimedia.so.6", True))
        files += [QtFile("QtMultimedia backend (audio playback)", path, True)
                  for path in sorted((plugins / "multimedia").glob("*.so"))]
    files += [QtFile("Qt platform plugin wayland (optional: Qt uses xcb without it)", path, False)
              for path in sorted((plugins / "platforms").glob("libqwayland*.so"))]
    return [file for file in files if file.path.exists()]


def find_missing(files: list[QtFile], ldd: str = "ldd") -> list[Missing]:
    """Run ``ldd`` on each file and collect what it cannot find (required where any required file needs it)."""
    needed_by: dict[str, list[QtFile]] = {}
    for file in files:
        result = subprocess.run([ldd, str(file.path)], capture_output=True, text=True, timeout=60, check=False)
        for soname in parse_ldd(result.stdout):
            needed_by.setdefault(soname, []).append(file)
    return [Missing(soname, tuple(dict.fromkeys(f.purpose for f in users)), any(f.required for f in users))
            for soname, users in needed_by.items()]


def packages(missing: list[Missing]) -> list[str]:
    """The Debian packages that provide ``missing`` (those in the table), in order, each once."""
    return list(dict.fromkeys(m.package for m in missing if m.package))


def install_command(package_names: list[str]) -> str:
    """The one line a user runs to install ``package_names`` on Debian/Ubuntu."""
    return "sudo apt-get install -y " + " ".join(shlex.quote(name) for name in package_names)


def other_system_advice(sonames: list[str]) -> str:
    """How to install ``sonames`` where apt-get is not the package manager (by soname: the managers resolve it)."""
    quoted = " ".join(shlex.quote(s) for s in sonames)
    for tool in ("dnf", "yum", "zypper"):  # RPM: a library is provided as 'SONAME()(64bit)'
        if shutil.which(tool):
            return f"install them by soname: sudo {tool} install " + " ".join(f"'{s}()(64bit)'" for s in sonames)
    if shutil.which("apk"):
        return "install them by soname: sudo apk add " + " ".join(f"so:{s}" for s in sonames)
    if shutil.which("pacman"):
        return f"find their packages with: pacman -F {quoted}"
    return "install the packages that provide them with your system's package manager"


def describe(missing: list[Missing]) -> list[str]:
    """One line per missing soname: its package (or that none is known) and what needs it."""
    lines = []
    for item in missing:
        package = item.package or "no package known: find it with `apt-file search " + item.soname + "`"
        lines.append(f"  {item.soname} ({package}) needed by {', '.join(item.needed_by)}")
    return lines


def apt_install(apt_get: str, package_names: list[str]) -> bool:
    """``apt-get update`` then install ``package_names`` without recommends; True when apt-get succeeded."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    update = subprocess.run([apt_get, "update", "-qq"], env=env, check=False)
    if update.returncode != 0:
        return False
    install = [apt_get, "install", "-y", "-qq", "--no-install-recommends", *package_names]
    return subprocess.run(install, env=env, check=False).returncode == 0


def say(message: str) -> None:
    print(f"studiolo: {message}", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="never install; exit 1 when a required library is missing")
    parser.add_argument("--quiet", action="store_true", help="print nothing when nothing required is missing")
    parser.add_argument("--pyside", type=Path, help="the PySide6 package folder (default: the installed one)")
    parser.add_argument("--ldd", default="ldd", help="the ldd program (default: ldd)")
    parser.add_argument("--apt-get", default="apt-get", dest="apt_get", help="the apt-get program (default: apt-get)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Check, install when root on Debian/Ubuntu, re-check; see the module docstring for the exit status."""
    args = _parser().parse_args(argv)
    if not sys.platform.startswith("linux"):
        return 0
    pyside = args.pyside or pyside_dir()
    if pyside is None or not pyside.is_dir():
        say("PySide6 is not installed in this environment: run scripts/bootstrap.sh (or `make run`) first")
        return 1
    if shutil.which(args.ldd) is None:
        say(f"cannot check Qt's system libraries: `{args.ldd}` not found (Debian: apt-get install libc-bin)")
        return 1 if args.check else 0
    files = qt_files(pyside)
    missing = find_missing(files, args.ldd)
    required = [m for m in missing if m.required]
    optional = [m for m in missing if not m.required]
    if optional and not args.quiet:
        say("optional libraries missing (Qt falls back to xcb without them):")
        print("\n".join(describe(optional)), file=sys.stderr)
        if packages(optional):
            say(f"to add them: {install_command(packages(optional))}")
    if not required:
        if not args.quiet:
            say(f"Qt's system libraries are all present ({len(files)} files checked)")
        return 0

    say("Qt (PySide6) needs system libraries that are missing:")
    print("\n".join(describe(required)), file=sys.stderr)
    names = packages(required)
    unknown = [m.soname for m in required if m.package is None]
    apt_get = shutil.which(args.apt_get)
    if apt_get is None:
        say(other_system_advice([m.soname for m in required]))
        return 1
    if args.check or os.geteuid() != 0 or not names:
        if names:
            say(f"install them with:\n{install_command(names)}")
        if unknown:
            say(f"no Debian package known for {', '.join(unknown)}: find it with `apt-file search SONAME`")
        return 1

    say(f"installing {' '.join(names)} (apt-get, as root)")
    if not apt_install(apt_get, names):
        say(f"apt-get could not install them; run it yourself and read its message:\n{install_command(names)}")
        return 1
    still = [m for m in find_missing(files, args.ldd) if m.required]
    if still:
        say("still missing after the install:")
        print("\n".join(describe(still)), file=sys.stderr)
        return 1
    say("Qt's system libraries are all present now")
    return 0


if __name__ == "__main__":
    sys.exit(main())
