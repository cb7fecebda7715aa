"""Studiolo's built-in GGUF text generator (llama.cpp): quantised models, fast and light on a CPU; continue or chat.

Registered through the ``studiolo`` entry-point group like any third-party plugin; imports nothing from the host
but ``desktop.api``, and llama-cpp-python/gguf only inside ``load``/``generate`` (never torch).
"""

from desktop.api import hookimpl


@hookimpl
def register_generators(register):
    from plugins.gguf.generator import LlamaCppTextGenerator

    register(LlamaCppTextGenerator())
