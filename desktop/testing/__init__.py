"""Testing helpers for plugin authors (and Studiolo's own tests).

* :func:`install_plugin` — install a plugin by entry point without pip: write its modules and a ``.dist-info``
  folder (metadata + ``entry_points.txt``) into a folder on ``sys.path``, as pip would.
* :func:`run_generator` — run one job headless, synchronously, through the real ``load``/``generate`` path,
  and get back its outputs, progress reports and previews.
* :func:`register_project` — make the plugin package under test (its :class:`PluginProject`, read from its
  ``pyproject.toml``) discoverable by its entry points, installed or straight from its source tree.

The pytest fixtures built on them (``studiolo_home``, ``studiolo_site``, ``studiolo_plugins``, ``studiolo_run``,
``studiolo_project``, ``studiolo_pyproject``) come with Studiolo as a pytest plugin: installing Studiolo makes them
available to any test suite.
"""

from desktop.testing.distinfo import PluginSite, install_plugin
from desktop.testing.project import PluginProject, register_project
from desktop.testing.runner import RunResult, resolve_model_for_test, run_generator

__all__ = ["PluginProject", "PluginSite", "install_plugin", "register_project", "RunResult", "run_generator",
           "resolve_model_for_test"]
