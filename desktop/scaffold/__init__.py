"""``studiolo plugins new``: write a new plugin package to start from.

:func:`scaffold` creates ``DEST/studiolo-NAME/`` holding a package that installs, loads and passes its own tests
as written:

* ``pyproject.toml`` — the distribution ``studiolo-NAME``, its ``studiolo`` entry point, and the range of
  Studiolo it works with (:func:`studiolo_range`) as an ordinary dependency;
* ``studiolo_NAME/__init__.py`` — one working generator of the chosen kind (torch-free: words from a vocabulary,
  a procedural image, a sine-tone melody), with a tiny demo model, progress, previews, cancel and a seed;
* ``tests/test_generator.py`` — tests through the pytest fixtures Studiolo ships; ``studiolo_project`` finds the
  plugin by the entry point in ``pyproject.toml``, so they run before the package is installed too (no
  ``conftest.py`` needed);
* ``README.md`` (install, run, test, publish) and ``.gitignore``.

The compatibility policy the range encodes: the plugin API is versioned with Studiolo's own version
(``desktop.api.API_VERSION`` is its ``MAJOR.MINOR``). Before 1.0 a minor release may break plugins, so a plugin
made with Studiolo 0.4.x declares ``studiolo>=0.4,<0.5``; from 1.0 on only a major release may, so one made with
1.2.x declares ``studiolo>=1.2,<2``. pip refuses an incompatible plugin at install time and the plugin manager
checks the range again at load (``desktop.plugins.incompatibility``).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from string import Template

from desktop import __version__
from desktop.api.errors import StudioloError
from desktop.scaffold import templates

__all__ = ["KINDS", "RESERVED_NAMES", "PluginNames", "ScaffoldError", "plugin_names", "render", "scaffold",
           "studiolo_range", "validate_name"]

KINDS = ("text", "image", "audio")
"""The kinds of generator the scaffold can write."""

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
MAX_NAME_LENGTH = 40

RESERVED_NAMES = frozenset({"studiolo", "desktop", "plugins", "image", "text", "audio", "gguf", "remote"})
"""Names a plugin cannot take: Studiolo's own distribution and packages, and the built-in plugins' entry-point
names (``[project.entry-points.studiolo]`` in Studiolo's pyproject.toml), which would clash in the plugin list."""


class ScaffoldError(StudioloError):
    """The plugin package cannot be created: a bad name or kind, or the folder already exists."""


@dataclass(frozen=True)
class PluginNames:
    """Every name a plugin package uses, derived from the plugin's name (``sea-sounds``)."""

    name: str  #: the entry-point name: how `studiolo plugins list|disable` and STUDIOLO_LOAD_PLUGINS name it
    kind: str  #: the generator's kind
    distribution: str  #: ``studiolo-sea-sounds``: what pip installs and PyPI lists
    module: str  #: ``studiolo_sea_sounds``: the import package
    generator_id: str  #: ``audio.sea_sounds``: the generator's stable id
    class_prefix: str  #: ``SeaSounds``: ``SeaSoundsGenerator``, ``SeaSoundsParams``
    title: str  #: ``Sea sounds``: the generator's name in the window


def validate_name(name: str) -> str:
    """Return ``name`` if it can name a plugin, else raise :class:`ScaffoldError` saying why and what to do.

    A name is lower-case letters and digits, words joined by single ``-`` or ``_``, starting with a letter (it
    becomes part of the generator id, which starts each part with a letter), at most 40 characters.
    """
    if not isinstance(name, str) or not name:
        raise ScaffoldError("A plugin needs a name.", hint="For example: studiolo plugins new tiles")
    if "/" in name or "\\" in name or name.startswith("."):
        raise ScaffoldError(f"{name!r} is a path, not a plugin name.",
                            hint="Give only the name; choose the folder it goes in with --dir.")
    if name.startswith("studiolo-") or name.startswith("studiolo_"):
        bare = name[len("studiolo-"):]
        raise ScaffoldError(f"{name!r} repeats the 'studiolo-' prefix the package gets anyway.",
                            hint=f"Use {bare!r}: the package is then named studiolo-{bare}.")
    if name in RESERVED_NAMES:
        raise ScaffoldError(f"{name!r} is taken by Studiolo itself.", hint="Choose another name for your plugin.")
    if len(name) > MAX_NAME_LENGTH or not NAME_PATTERN.fullmatch(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name.",
            hint=f"Use lower-case letters and digits, words joined by '-' or '_', starting with a letter, at most "
                 f"{MAX_NAME_LENGTH} characters: for example 'tiles' or 'sea-sounds'.")
    return name


def plugin_names(name: str, kind: str = "text") -> PluginNames:
    """The names of the package, module, entry point, generator and classes for plugin ``name`` of ``kind``."""
    validate_name(name)
    if kind not in KINDS:
        raise ScaffoldError(f"Unknown kind {kind!r}.", hint=f"Choose one of: {', '.join(KINDS)}.")
    words = re.split(r"[-_]", name)
    snake = "_".join(words)
    return PluginNames(name=name, kind=kind, distribution=f"studiolo-{name}", module=f"studiolo_{snake}",
                       generator_id=f"{kind}.{snake}", class_prefix="".join(w.capitalize() for w in words),
                       title=" ".join(words).capitalize())


def studiolo_range(version: str = __version__) -> str:
    """The Studiolo version specifier a plugin made with Studiolo ``version`` declares: ``>=0.1,<0.2`` for 0.1.x,
    ``>=1.2,<2`` for 1.2.x (see the module docstring for the policy).

    For a pre-release of a new minor (``0.2.0.dev1``) the lower bound is that minor's first pre-release, so the
    running Studiolo itself satisfies the range.
    """
    from packaging.version import InvalidVersion, Version

    try:
        parsed = Version(version)
    except InvalidVersion:
        raise ScaffoldError(f"Cannot read Studiolo's version {version!r}.") from None
    major, minor = (parsed.release + (0, 0))[:2]
    lower = f"{major}.{minor}"
    if parsed < Version(lower):
        lower += ".0.dev0"
    upper = f"0.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={lower},<{upper}"


def scaffold(name: str, dest: Path, *, kind: str = "text", author: str | None = None) -> Path:
    """Create ``dest/studiolo-NAME/`` with a working plugin package of ``kind`` and return that folder.

    ``dest`` is created if needed. An existing ``studiolo-NAME`` folder is never touched (:class:`ScaffoldError`);
    if writing fails halfway, nothing is left behind.
    """
    names = plugin_names(name, kind)
    if author is not None and (not author.strip() or "\n" in author or "\r" in author):
        raise ScaffoldError(f"Invalid author {author!r}.", hint="Give the author's name on one line.")
    dest = Path(dest).expanduser()
    root = dest / names.distribution
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScaffoldError(f"Cannot create the folder {dest}: {exc.strerror or exc}.",
                            hint="Choose a folder you can write to with --dir.") from exc
    try:
        root.mkdir()
    except FileExistsError:
        raise ScaffoldError(f"{root} already exists.",
                            hint="Choose another name or another folder (--dir); nothing was changed.") from None
    except OSError as exc:
        raise ScaffoldError(f"Cannot create {root}: {exc.strerror or exc}.",
                            hint="Choose a folder you can write to with --dir.") from exc
    try:
        for relative, text in render(names, author=author).items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return root


def render(names: PluginNames, *, author: str | None = None) -> dict[str, str]:
    """The package's files (relative path → text), without writing them."""
    values = {
        "name": names.name,
        "kind": names.kind,
        "dist": names.distribution,
        "module": names.module,
        "generator_id": names.generator_id,
        "cls": names.class_prefix,
        "title": names.title,
        "range": studiolo_range(),
        "range_policy": templates.RANGE_POLICIES["0" if __version__.startswith("0.") else "1+"],
        "studiolo_version": __version__,
        "description": templates.DESCRIPTIONS[names.kind],
        "authors": f"authors = [{{ name = {json.dumps(author, ensure_ascii=False)} }}]\n" if author else "",
        "suffix": templates.OUTPUT_SUFFIXES[names.kind],
        "example_param": templates.EXAMPLE_PARAMS[names.kind],
        "extra_dependencies": "".join(f", {json.dumps(d)}" for d in templates.EXTRA_DEPENDENCIES[names.kind]),
    }
    files = {
        "pyproject.toml": templates.PYPROJECT,
        "README.md": templates.README,
        ".gitignore": templates.GITIGNORE,
        f"{names.module}/__init__.py": templates.MODULES[names.kind],
        "tests/test_generator.py": templates.TESTS[names.kind],
    }
    return {path: Template(text).substitute(values) for path, text in files.items()}
