"""Testing helpers for plugin authors (and Studiolo's own tests).

* :func:`install_plugin` — install a plugin by entry point without pip: write its modules and a ``.dist-info``
  folder (metadata + ``entry_points.txt``) into a folder on ``sys.path``, as pip would.
* :func:`run_generator` — run one job headless, synchronously, through the real ``load``/``generate`` path,
  and get back its outputs, progress reports and previews.

The pytest fixtures built on them (``studiolo_home``, ``studiolo_site``, ``studiolo_plugins``, ``studiolo_run``)
come with Studiolo as a pytest plugin: installing Studiolo makes them available to any test suite.
"""

from desktop.testing.distinfo import PluginSite, install_plugin
from desktop.testing.runner import RunResult, resolve_model_for_test, run_generator

__all__ = ["PluginSite", "install_plugin", "RunResult", "run_generator", "resolve_model_for_test"]
