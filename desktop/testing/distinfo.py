"""Install a plugin by entry point without pip: modules plus a ``.dist-info`` folder on ``sys.path``."""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path


def install_plugin(
    site: Path,
    dist_name: str,
    *,
    modules: Mapping[str, str],
    entry_points: Mapping[str, str],
    version: str = "0.1.0",
    requires: Sequence[str] = (),
    summary: str = "",
    author: str = "",
    group: str = "studiolo",
) -> Path:
    """Write ``modules`` (module name → source) and a distribution's metadata into ``site``.

    ``entry_points`` maps entry-point names to object references (``"my_module"`` or ``"my_module:plugin"``).
    ``site`` must be on ``sys.path`` (see :class:`PluginSite`) for Python to find the distribution. Returns the
    ``.dist-info`` folder.
    """
    site.mkdir(parents=True, exist_ok=True)
    for name, source in modules.items():
        path = site.joinpath(*name.split(".")).with_suffix(".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
        sys.modules.pop(name, None)  # a re-install with new source takes effect
    normalised = re.sub(r"[-_.]+", "_", dist_name)
    info = site / f"{normalised}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    lines = ["Metadata-Version: 2.1", f"Name: {dist_name}", f"Version: {version}"]
    if summary:
        lines.append(f"Summary: {summary}")
    if author:
        lines.append(f"Author: {author}")
    lines += [f"Requires-Dist: {req}" for req in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n", encoding="utf-8")
    eps = "".join(f"{name} = {ref}\n" for name, ref in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{eps}", encoding="utf-8")
    (info / "top_level.txt").write_text("".join(f"{m.split('.')[0]}\n" for m in modules), encoding="utf-8")
    (info / "INSTALLER").write_text("studiolo-testing\n", encoding="utf-8")
    (info / "RECORD").write_text("", encoding="utf-8")
    importlib.invalidate_caches()
    return info


class PluginSite:
    """A folder of plugins installed by :func:`install_plugin`, put on ``sys.path`` (and on ``PYTHONPATH`` for
    subprocesses through :meth:`env`) for as long as it is active."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir(parents=True, exist_ok=True)
        self._modules: set[str] = set()

    def install(self, dist_name: str, **kwargs) -> Path:
        self._modules.update(kwargs.get("modules", {}))
        return install_plugin(self.path, dist_name, **kwargs)

    def activate(self) -> None:
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))
        importlib.invalidate_caches()

    def deactivate(self) -> None:
        while str(self.path) in sys.path:
            sys.path.remove(str(self.path))
        for name in self._modules:
            sys.modules.pop(name, None)
        importlib.invalidate_caches()

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess that sees these plugins."""
        env = dict(os.environ if base is None else base)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(self.path), env.get("PYTHONPATH", "")) if p)
        return env
