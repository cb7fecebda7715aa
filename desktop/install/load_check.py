"""After an install: load the plugin as Studiolo would, in a subprocess of the target environment.

The check runs :class:`desktop.plugins.PluginManager` — the app's own loader — on the installed distribution's
``studiolo`` entry points only: each is imported, registered with pluggy, its ``register_generators`` hook is
called and every generator it registers is checked (:func:`desktop.plugins.check_generator`). A plugin that fails
any step is reported with the reason the Plugins page would show and its traceback. It runs in a subprocess so that
a plugin that ends or hangs the process cannot take the installer with it; the subprocess has its own load journal
(a temporary folder), so the check leaves no mark on the user's.
"""

from __future__ import annotations

from desktop.install.errors import PluginInstallError
from desktop.install.pip_runner import _PRELUDE, JSON_MARK, PipRunner, parse_json_mark

GROUP = "studiolo"
CHECK_TIMEOUT_S = 180.0  # the whole subprocess
IMPORT_TIMEOUT_S = 60.0  # one plugin's import, inside it
CHECK_FAILED = "(load check)"  # the key of a failure that is not one plugin's

LOAD_CHECK_SCRIPT = _PRELUDE + """
import json, os, tempfile, traceback
from importlib import metadata
from pathlib import Path
os.environ.pop("STUDIOLO_LOAD_PLUGINS", None)
out = {}
try:
    from desktop.plugin_journal import LoadJournal
    from desktop.plugins import PluginManager, Status
    from desktop.settings import Settings
    eps = [ep for ep in metadata.distribution(sys.argv[1]).entry_points if ep.group == %(group)r]
    with tempfile.TemporaryDirectory(prefix="studiolo-load-check-") as journal:
        manager = PluginManager(Settings(), eps, journal=LoadJournal(Path(journal)),
                                import_timeout=float(sys.argv[2]))
        manager.load()
    for name, record in manager.plugins.items():
        ok = record.status == Status.LOADED
        out[name] = None if ok else [record.error or f"not loaded ({record.status})", record.traceback or ""]
except BaseException as exc:
    lines = str(exc).strip().splitlines()
    out[%(failed)r] = [f"Studiolo's plugin loader failed: {type(exc).__name__}" + (f": {lines[0]}" if lines else ""),
                       traceback.format_exc()]
sys.stdout.flush()
print(%(mark)r + json.dumps(out), flush=True)
""" % {"failed": CHECK_FAILED, "group": GROUP, "mark": JSON_MARK}


def check_plugin_loads(runner: PipRunner, distribution: str) -> tuple[dict[str, str], dict[str, str]]:
    """Load the installed ``distribution``'s plugins in the target environment as Studiolo would. Returns
    ``(errors, tracebacks)``, both by plugin name (:data:`CHECK_FAILED` for a failure of the check itself); empty
    when every plugin loads."""
    try:
        completed = runner.python_run(LOAD_CHECK_SCRIPT, distribution, str(IMPORT_TIMEOUT_S),
                                      timeout=CHECK_TIMEOUT_S)
    except PluginInstallError as exc:  # it ran past the timeout: a plugin hangs while it loads
        return {CHECK_FAILED: f"loading it did not finish: {exc.message}"}, {}
    value = parse_json_mark(completed.stdout)
    if not isinstance(value, dict):
        tail = " ".join((completed.stderr or "").strip().splitlines()[-2:])
        return {CHECK_FAILED: f"loading it ended the process (exit status {completed.returncode})"
                + (f": {tail}" if tail else "")}, {}
    errors = {name: item[0] for name, item in value.items() if item}
    tracebacks = {name: item[1] for name, item in value.items() if item and item[1]}
    return errors, tracebacks
