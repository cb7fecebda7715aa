"""What a person may ask to install: a requirement (``name``, ``name==1.2``, ``name>=1,<2``), a wheel or source
archive on disk, or a plugin's source folder.

:func:`parse_spec` validates strictly and turns the text into an :class:`InstallRequest` whose ``arg`` is passed
to pip as one argument (never through a shell). Anything that could make pip do something other than install
that one thing — an option (``-e``, ``--index-url=…``), a URL or direct reference (``name @ url``), an
environment marker (``; …``), several items, shell metacharacters — is refused with the reason.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from desktop.install.errors import PluginInstallError

MAX_LENGTH = 200
NAME_PATTERN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
REQUIREMENT_CHARS = re.compile(r"[A-Za-z0-9._\-\[\],<>=!~*+ ]+")
DIRECT_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?\s*@")  # name @ url
SDIST_SUFFIXES = (".tar.gz", ".zip")
CONTROL = {chr(c) for c in range(32)} | {"\x7f"}
SHELL_CHARS = set("|&$`\"'(){}?;#")  # never used through a shell, refused all the same
# Characters pip would read as something other than part of a path (markers, URL fragments, extras).
PATH_FORBIDDEN = set(";#[]") | CONTROL

SPEC_HINT = ("Give a package name (like studiolo-markov or studiolo-markov==1.0), a .whl or .tar.gz file, or a "
             "plugin's folder.")


class Kind:
    REQUIREMENT = "requirement"
    WHEEL = "wheel"
    SDIST = "sdist"
    FOLDER = "folder"


@dataclass(frozen=True)
class InstallRequest:
    """A validated install request.

    ``arg`` is the single argument pip gets (a normalised requirement or an absolute path); ``name`` is the
    canonical distribution name when it is known before pip runs (from the requirement, the file name or a
    folder's ``pyproject.toml``); ``version`` is the exact version when known (``==1.2``, a file name).
    """

    kind: str
    text: str
    arg: str
    name: str | None = None
    version: str | None = None

    @property
    def is_path(self) -> bool:
        return self.kind != Kind.REQUIREMENT

    def describe(self) -> str:
        if self.kind == Kind.REQUIREMENT:
            return self.arg
        what = {Kind.WHEEL: "the wheel", Kind.SDIST: "the source archive", Kind.FOLDER: "the folder"}[self.kind]
        return f"{what} {self.arg}"


def canonical(name: str) -> str:
    """The PEP 503 form of a distribution name (``Studiolo_Markov`` → ``studiolo-markov``)."""
    return canonicalize_name(name)


def validate_name(text: str) -> str:
    """A bare distribution name (for uninstall/update), canonical; :class:`PluginInstallError` otherwise."""
    value = text.strip()
    if not value:
        raise PluginInstallError("No plugin name was given.", hint="Give the plugin's name as `studiolo plugins "
                                 "list` shows it, or its package name.")
    _refuse_common(value)
    if len(value) > MAX_LENGTH or not NAME_PATTERN.fullmatch(value):
        raise PluginInstallError(f"{_shown(value)} is not a package name: a name has only letters, digits, '.', "
                                 "'-' and '_', and starts and ends with a letter or digit.")
    return canonical(value)


def parse_spec(text: str, *, cwd: Path | None = None) -> InstallRequest:
    """Validate what a person typed; raise :class:`PluginInstallError` naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PluginInstallError("Nothing to install was given.", hint=SPEC_HINT)
    value = text.strip()
    if len(value) > MAX_LENGTH:
        raise PluginInstallError(f"What to install is {len(value)} characters long; at most {MAX_LENGTH} are "
                                 "accepted.", hint=SPEC_HINT)
    _refuse_common(value)
    if _looks_like_path(value):
        return _parse_path(text, value, cwd or Path.cwd())
    return _parse_requirement(text, value)


def _refuse_common(value: str) -> None:
    if value.startswith("-"):
        raise PluginInstallError(f"{_shown(value)} looks like an option for pip; options cannot be passed "
                                 "this way.", hint=SPEC_HINT)
    if DIRECT_REFERENCE.match(value):
        raise PluginInstallError(f"{_shown(value)} is a direct reference (name @ URL), which is not accepted.",
                                 hint="Download the file first, then install it from disk.")
    if "://" in value or value.lower().startswith(("file:", "http:", "https:", "git+")):
        raise PluginInstallError(f"{_shown(value)} is a URL; Studiolo installs plugins by name, or from a "
                                 "file or folder on this computer.", hint="Download the file first, then install "
                                 "it from disk.")
    if ";" in value:
        raise PluginInstallError(f"{_shown(value)} contains ';': environment markers and commands are not "
                                 "accepted.", hint=SPEC_HINT)
    bad = [ch for ch in value if ch in CONTROL or ch in SHELL_CHARS]
    if bad:
        raise PluginInstallError(f"{_shown(value)} contains {bad[0]!r}, which is not allowed in what to install.",
                                 hint=SPEC_HINT)


def _looks_like_path(value: str) -> bool:
    return ("/" in value or "\\" in value or value.startswith((".", "~"))
            or re.match(r"[A-Za-z]:[\\/]", value) is not None
            or value.lower().endswith((".whl", *SDIST_SUFFIXES)))


def _parse_requirement(text: str, value: str) -> InstallRequest:
    if not REQUIREMENT_CHARS.fullmatch(value):
        bad = next(ch for ch in value if not REQUIREMENT_CHARS.fullmatch(ch))
        raise PluginInstallError(f"{_shown(value)} contains {bad!r}, which is not allowed in a package name or "
                                 "version range.", hint=SPEC_HINT)
    try:
        req = Requirement(value)
    except InvalidRequirement:
        if len(value.split()) > 1 and all(NAME_PATTERN.fullmatch(t) for t in value.split()):
            raise PluginInstallError(f"{_shown(value)} is several names; install one plugin at a time.",
                                     hint=SPEC_HINT) from None
        raise PluginInstallError(f"{_shown(value)} is not a package name with an optional version range.",
                                 hint=SPEC_HINT) from None
    if req.url or req.marker is not None:  # refused above already; kept as a second line of defence
        raise PluginInstallError(f"{_shown(value)} has a URL or a marker, which is not accepted.", hint=SPEC_HINT)
    if not NAME_PATTERN.fullmatch(req.name):
        raise PluginInstallError(f"{_shown(req.name)} is not a package name.", hint=SPEC_HINT)
    exact = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return InstallRequest(Kind.REQUIREMENT, text, str(req), canonical(req.name), exact[0] if len(exact) == 1
                          else None)


def _parse_path(text: str, value: str, cwd: Path) -> InstallRequest:
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else cwd / path).resolve()
    if any(ch in PATH_FORBIDDEN for ch in str(path)):
        raise PluginInstallError(f"The path {path} contains a character pip would misread (one of ; # [ ]).",
                                 hint="Rename the file or folder, or move it, and try again.")
    if str(path).startswith("-"):  # cannot happen for an absolute path; never let one reach pip as an option
        raise PluginInstallError(f"{_shown(value)} is not a usable path.", hint=SPEC_HINT)
    if not path.exists():
        raise PluginInstallError(f"There is no file or folder {path}.", hint=SPEC_HINT)
    if path.is_dir():
        if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
            raise PluginInstallError(f"The folder {path} is not a Python project: it has no pyproject.toml or "
                                     "setup.py.", hint="Choose the plugin's folder (the one with pyproject.toml).")
        return InstallRequest(Kind.FOLDER, text, str(path), _folder_name(path))
    name = path.name
    if name.lower().endswith(".whl"):
        try:
            dist, version, _build, _tags = parse_wheel_filename(name)
        except InvalidWheelFilename as exc:
            raise PluginInstallError(f"{name} is not a valid wheel file name ({exc}).",
                                     hint="A wheel is named like name-1.0-py3-none-any.whl; do not rename it.") \
                from None
        return InstallRequest(Kind.WHEEL, text, str(path), canonical(dist), str(version))
    if name.lower().endswith(SDIST_SUFFIXES):
        try:
            dist, version = parse_sdist_filename(name)
        except InvalidSdistFilename:
            return InstallRequest(Kind.SDIST, text, str(path))
        return InstallRequest(Kind.SDIST, text, str(path), canonical(dist), str(version))
    raise PluginInstallError(f"{name} is not a wheel (.whl), a source archive (.tar.gz, .zip) or a folder.",
                             hint=SPEC_HINT)


def _folder_name(path: Path) -> str | None:
    try:
        project = tomllib.loads((path / "pyproject.toml").read_text(encoding="utf-8")).get("project", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    name = project.get("name") if isinstance(project, dict) else None
    return canonical(name) if isinstance(name, str) and NAME_PATTERN.fullmatch(name) else None


def _shown(value: str, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…'"
