"""Studiolo's built-in remote generators: text, images and sound made on OpenAI-compatible servers.

``remote.text``, ``remote.image`` and ``remote.audio`` run their jobs on the servers the user added (Settings →
Servers, ``studiolo servers add``): another Studiolo (``studiolo serve``), llama.cpp's server, vLLM, Ollama, LocalAI…
They only talk HTTP, so they run on a thread of Studiolo's own process (``runs_in_process``) and import nothing heavy:
the OpenAI client (the ``remote`` extra) is imported inside ``load``/``generate``. With no server configured nothing is
contacted. Registered through the ``studiolo`` entry-point group like any third-party plugin; imports nothing from the
host but ``desktop.api``.
"""

from desktop.api import hookimpl


@hookimpl
def register_generators(register):
    from plugins.remote.audio import RemoteAudioGenerator
    from plugins.remote.image import RemoteImageGenerator
    from plugins.remote.text import RemoteTextGenerator

    register(RemoteTextGenerator())
    register(RemoteImageGenerator())
    register(RemoteAudioGenerator())
