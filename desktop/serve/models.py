"""What ``GET /v1/models`` lists, and which generator and model a request's ``"model"`` names.

A model's id is ``GENERATOR_ID/REF`` (``text.transformers/demo``, ``image.diffusers/stabilityai/sd-turbo``):
generator ids never hold a ``/``, so the id splits at its first one. A bare generator id names its default model.
Listed are the enabled generators of kind text, image and audio, each with the models the generator page's model
chooser offers (:func:`desktop.models.inventory.installed_refs`: the demo model, imported models it used or had
imported for it, complete hub models it recommends or used); a generator that uses no model is listed by its id.

Only a listed model can be asked for: a request cannot make the server download a hub repo or read a folder of its
choice. Listing reads the disk (a few small files per model): the routes call these functions in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop.api import Generator, schema
from desktop.serve.openai_shapes import bad_request, not_found

SERVED_KINDS = ("text", "image", "audio")
ENDPOINTS = {"text": "/v1/chat/completions or /v1/completions", "image": "/v1/images/generations",
             "audio": "/v1/audio/speech"}


@dataclass(frozen=True)
class ServedModel:
    """One entry of ``/v1/models``: its ``id``, its generator and the model reference the engine runs it with
    (None: the generator's default, for a generator that uses no model)."""

    id: str
    generator: Generator
    ref: str | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "object": "model", "created": 0, "owned_by": "studiolo",
                "studiolo": {"generator": self.generator.id, "kind": self.generator.kind, "model": self.ref,
                             "modes": modes(self.generator)}}


def modes(generator: Generator) -> list[str]:
    """The choices of the generator's ``mode`` parameter (``chat``/``continue``, ``txt2img``/``img2img``…), or none."""
    field = next((f for f in schema(generator.Params) if f.name == "mode"), None)
    return [str(c) for c in field.spec.choices] if field is not None and field.spec.choices else []


def served_generators(plugins: Any) -> list[Generator]:
    """The enabled generators the API serves (kind text, image or audio), by id."""
    return [g for _id, g in sorted(plugins.generators.items()) if g.kind in SERVED_KINDS]


def _models_of(generator: Generator, allow_pickle: bool) -> list[ServedModel]:
    from desktop.models.inventory import installed_refs
    from desktop.models.modelless import uses_model

    if not uses_model(generator):
        return [ServedModel(generator.id, generator, None)]
    return [ServedModel(f"{generator.id}/{ref}", generator, ref)
            for _label, ref in installed_refs(generator, allow_pickle=allow_pickle)]


def list_models(plugins: Any, *, allow_pickle: bool = False) -> list[ServedModel]:
    """Every model the API serves (reads the disk: not on an event loop's thread)."""
    return [model for generator in served_generators(plugins) for model in _models_of(generator, allow_pickle)]


def resolve(plugins: Any, model_id: Any, kinds: tuple[str, ...], *, allow_pickle: bool = False
            ) -> tuple[Generator, str | None]:
    """The generator and model reference ``model_id`` names (a bare generator id: its default model; None for a
    generator that uses no model), for an endpoint serving ``kinds``. Raises a 404
    :class:`~desktop.serve.openai_shapes.ApiError` for a model that is not served here, a 400 for one of another
    kind (naming the endpoint to use). Reads the disk for a model other than a demo model."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise bad_request("Say which model to use: \"model\" is one of the ids GET /v1/models lists.",
                          param="model", code="missing_model")
    generator_id, slash, ref = model_id.strip().partition("/")
    generator = plugins.generators.get(generator_id)
    if generator is None or generator.kind not in SERVED_KINDS:
        raise _unknown(model_id)
    if generator.kind not in kinds:
        raise bad_request(f"{model_id!r} is a model of kind {generator.kind}; this endpoint serves "
                          f"{' and '.join(kinds)} models. Use {ENDPOINTS[generator.kind]} for it.", param="model",
                          code="wrong_model_kind")
    if not slash:  # its default model, when that is served here too (never a download on a request's behalf)
        ref = generator.default_model
        if ref is None:
            return generator, None
    if ref == "demo" and generator.has_demo_model:  # built on first use; no need to look at the disk
        return generator, ref
    if any(m.ref == ref for m in _models_of(generator, allow_pickle)):
        return generator, ref
    raise _unknown(model_id)


def _unknown(model_id: str) -> Exception:
    return not_found(f"The model {model_id!r} does not exist on this server (GET /v1/models lists the ones it "
                     "serves; a model is served once it is installed in Studiolo).", param="model",
                     code="model_not_found")
