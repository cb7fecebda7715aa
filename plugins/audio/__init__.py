"""Studiolo's built-in audio generators (transformers): speech with VITS models, music with MusicGen.

Registered through the ``studiolo`` entry-point group like any third-party plugin; imports nothing from the host
but ``desktop.api``, and transformers/torch only inside ``load``/``generate``.
"""

from desktop.api import hookimpl


@hookimpl
def register_generators(register):
    from plugins.audio.music import MusicGenGenerator
    from plugins.audio.speech import VitsSpeechGenerator

    register(VitsSpeechGenerator())
    register(MusicGenGenerator())
