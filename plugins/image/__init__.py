"""Studiolo's built-in image generator (diffusers): txt2img, img2img and inpainting from one loaded model,
LoRAs, schedulers, live previews and A1111-compatible PNG metadata.

Registered through the ``studiolo`` entry-point group like any third-party plugin; imports nothing from the host
but ``desktop.api``, and diffusers/torch only inside ``load``/``generate``.
"""

from desktop.api import hookimpl


@hookimpl
def register_generators(register):
    from plugins.image.generator import DiffusersImageGenerator

    register(DiffusersImageGenerator())
