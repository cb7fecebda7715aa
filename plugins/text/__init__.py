"""Studiolo's built-in text generator (transformers causal LMs): continue a document or chat, streaming tokens.

Registered through the ``studiolo`` entry-point group like any third-party plugin; imports nothing from the host
but ``desktop.api``, and transformers/torch only inside ``load``/``generate``.
"""

from desktop.api import hookimpl


@hookimpl
def register_generators(register):
    from plugins.text.generator import TransformersTextGenerator

    register(TransformersTextGenerator())
