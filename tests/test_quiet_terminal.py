"""A quiet terminal: libraries' warnings, loggers and progress bars — in the worker processes where generators run —
go to Studiolo's log folder (``worker-<generator id>.log``), not to stdout/stderr, unless ``--verbose``."""

from __future__ import annotations

import os

import pytest
from helpers import run_cli, run_python

from desktop.logs import VERBOSE_ENV, log_files, worker_log_path
from desktop.ui.diagnostics import log_lines

NOISY = '''
import logging
import os
import sys
import warnings
from dataclasses import dataclass

from desktop.api import Generator, TextOutput, hookimpl, param


@dataclass(frozen=True)
class NoisyParams:
    prompt: str = param("", prompt=True)


class Noisy(Generator):
    """Writes what libraries write: a Python warning (torch's kind), a transformers logger warning, a print and
    bytes on file descriptor 2 (native code)."""
    id, name, kind, Params = "test.noisy", "Noisy", "text", NoisyParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        from transformers.utils import logging as hf_logging

        warnings.warn("noisy-python-warning: this argument is deprecated", FutureWarning)
        hf_logging.get_logger("transformers.noisy").warning("noisy-transformers-warning: no attention mask")
        logging.getLogger("somelib").warning("noisy-library-logger: a record without a handler")
        print("noisy-print on stdout", flush=True)
        os.write(2, b"noisy-native on stderr\\n")
        return [TextOutput(text="the quiet result")]


@hookimpl
def register_generators(register):
    register(Noisy())
'''

NOISES = ("noisy-python-warning", "noisy-transformers-warning", "noisy-library-logger", "noisy-print",
          "noisy-native")
DEMO_RUN = ("generate", "text.transformers", "--model", "demo", "-p", "prompt=Once upon a time",
            "-p", "max_new_tokens=4", "--seed", "1")


def studiolos_own(line: str, generator_id: str) -> bool:
    """Whether a line of stderr is one Studiolo's command writes: progress, where the output went, the seed."""
    return line.startswith((f"{generator_id} [", "saved ", "seed "))


@pytest.fixture
def noisy_env(studiolo_site, studiolo_home, monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    studiolo_site.install("studiolo-test-noisy", modules={"studiolo_test_noisy": NOISY},
                          entry_points={"noisy": "studiolo_test_noisy"})
    return studiolo_site.env()


def test_transformers_chatter_goes_to_the_worker_log_not_the_terminal(studiolo_home, monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    quiet = run_cli(*DEMO_RUN)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr.strip() and all(studiolos_own(line, "text.transformers")
                                        for line in quiet.stderr.splitlines()), quiet.stderr
    log = worker_log_path("text.transformers")
    assert "Loading weights" in log.read_text()  # transformers' progress bar, kept in the log
    assert log in log_files()


def test_verbose_shows_transformers_chatter_on_the_terminal(studiolo_home, monkeypatch):
    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    loud = run_cli(*DEMO_RUN, "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr
    assert "4/4" in loud.stderr and "seed 1" in loud.stderr  # Studiolo's own lines are still there


def test_warnings_loggers_prints_and_native_output_of_a_worker_go_to_its_log(noisy_env):
    result = run_cli("generate", "test.noisy", "-p", "prompt=hush", env=noisy_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the quiet result"
    assert all(studiolos_own(line, "test.noisy") for line in result.stderr.splitlines()), result.stderr
    log = worker_log_path("test.noisy").read_text()
    for noise in NOISES:
        assert noise in log
    assert "FutureWarning" in log and "[worker test.noisy]" in log  # a warning, dated and named, not bare text
    diagnostics = "\n".join(log_lines())  # Help → Copy diagnostics: where the logs are, and their last warnings
    assert str(worker_log_path("test.noisy")) in diagnostics
    assert "worker-test.noisy.log: " in diagnostics and "noisy-python-warning" in diagnostics


def test_with_verbose_a_workers_output_is_on_the_terminal(noisy_env):
    result = run_cli("--verbose", "generate", "test.noisy", "-p", "prompt=hush", env=noisy_env)
    assert result.returncode == 0, result.stderr
    for noise in NOISES:
        assert noise in result.stdout + result.stderr
    assert "noisy-transformers-warning" in result.stderr and "noisy-print" not in result.stderr
    assert "the quiet result" in result.stdout
    env = {**noisy_env, VERBOSE_ENV: "1"}  # the same switch as an environment variable (as the workers get it)
    assert "noisy-python-warning" in run_cli("generate", "test.noisy", env=env).stderr


GUI_PROCESS = ("import logging, warnings\nfrom desktop.logs import setup_logging\nsetup_logging()\n"
               "warnings.warn('gui-python-warning', DeprecationWarning)\n"
               "logging.getLogger('somelib').warning('gui-library-logger')\n")


def test_in_studiolos_own_process_library_warnings_go_to_its_log(studiolo_home, monkeypatch):
    from desktop.logs import log_path

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    quiet = run_python(GUI_PROCESS)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    assert "gui-python-warning" in log_path().read_text() and "gui-library-logger" in log_path().read_text()
    loud = run_python(GUI_PROCESS, env={**os.environ, VERBOSE_ENV: "1"})
    assert "gui-python-warning" in loud.stderr and "gui-library-logger" in loud.stderr
