"""Plugins that misbehave in their worker processes, for tests/test_worker_processes.py (installed by entry point).

* ``test.crashy`` (no torch unless asked) does what its ``mode`` says: finish, segfault, ``os._exit(3)``, stream two
  text chunks then ignore cancel for ever, return an output that cannot be pickled, or one holding a torch tensor.
  Every output's metadata names the process that made it (``pid``).
* ``test.hog`` loads a "model" of :data:`HOG_BYTES` bytes actually written (resident memory), held in its handle.
* ``test.local`` declares ``runs_in_process``: it runs on a thread of the engine's own process.
* ``test.fragile`` (its own plugin) imports fine in the GUI process, but in its worker process (``STUDIOLO_WORKER``
  set) it raises ``ImportError`` or hangs for ever, as the :data:`FRAGILE_ENV` variable says when the process starts.
"""

from __future__ import annotations

HOG_BYTES = 200 * 1024 * 1024
FRAGILE_ENV = "STUDIOLO_TEST_FRAGILE"  # "import_error" or "hang": how test.fragile's module fails in a worker

CRASHY = f'''
import ctypes
import os
import threading
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

HOG_BYTES = {HOG_BYTES}


@dataclass(frozen=True)
class CrashyParams:
    mode: str = param("ok", choices=("ok", "segfault", "exit", "ignore_cancel", "unpicklable", "tensor"))


class Crashy(Generator):
    id = "test.crashy"
    name = "Crashy"
    kind = "text"
    Params = CrashyParams

    def load(self, model_path, device, options):
        return object()

    def generate(self, handle, params, ctx):
        pid = os.getpid()
        if params.mode == "segfault":
            ctypes.string_at(0)  # reads address 0: SIGSEGV
        elif params.mode == "exit":
            os._exit(3)
        elif params.mode == "ignore_cancel":
            ctx.preview("alpha ")
            ctx.preview("beta ")
            threading.Event().wait()  # never returns, never looks at ctx.cancelled
        elif params.mode == "unpicklable":
            return [TextOutput(text="locked", metadata={{"pid": pid, "lock": threading.Lock()}})]
        elif params.mode == "tensor":
            import torch
            return [TextOutput(text="tensor", metadata={{"pid": pid, "weights": torch.zeros(3)}})]
        return [TextOutput(text="fine", metadata={{"pid": pid}})]


@dataclass(frozen=True)
class HogParams:
    text: str = param("hog", prompt=True)


class Hog(Generator):
    id = "test.hog"
    name = "Hog"
    kind = "text"
    Params = HogParams

    def load(self, model_path, device, options):
        return {{"weights": b"w" * HOG_BYTES}}  # written, so resident: not lazily mapped zero pages

    def handle_size(self, handle):
        return len(handle["weights"])

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text, metadata={{"pid": os.getpid(), "held": len(handle["weights"])}})]


class Local(Crashy):
    id = "test.local"
    name = "Local"
    runs_in_process = True


@hookimpl
def register_generators(register):
    register(Crashy())
    register(Hog())
    register(Local())
'''

FRAGILE = f'''
import os
import threading
from dataclasses import dataclass
from desktop.api import Generator, TextOutput, hookimpl, param

_FAILURE = os.environ.get("{FRAGILE_ENV}") if os.environ.get("STUDIOLO_WORKER") else None
if _FAILURE == "import_error":
    raise ImportError("studiolo_fragile needs a library this worker process lacks")
if _FAILURE == "hang":
    threading.Event().wait()  # an import that never returns


@dataclass(frozen=True)
class FragileParams:
    text: str = param("fragile", prompt=True)


class Fragile(Generator):
    id = "test.fragile"
    name = "Fragile"
    kind = "text"
    Params = FragileParams

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return [TextOutput(text=params.text, metadata={{"pid": os.getpid()}})]


@hookimpl
def register_generators(register):
    register(Fragile())
'''


def install(site) -> None:
    """Install both plugins into a :class:`~desktop.testing.PluginSite`."""
    site.install("studiolo-test-crashy", modules={"studiolo_test_crashy": CRASHY},
                 entry_points={"crashy": "studiolo_test_crashy"}, requires=["studiolo>=0.2,<0.3"])
    site.install("studiolo-test-fragile", modules={"studiolo_test_fragile": FRAGILE},
                 entry_points={"fragile": "studiolo_test_fragile"}, requires=["studiolo>=0.2,<0.3"])
