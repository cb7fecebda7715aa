"""Generators that use no model: how the host tells them apart, and the refusal of a model given for one.

A generator uses no model when it names no default model (``default_model = None``) and offers none: it builds no
demo model and recommends none. Its ``load`` is called with ``model_path=None``. The window shows no model chooser
on its page, the model manager and the welcome page leave it out, and a model given for it (``studiolo generate
--model``, ``Engine.submit(model=...)``, a panel's ``host.submit(model=...)``) is refused by
:func:`check_model_choice` before anything is queued.
"""

from __future__ import annotations

from desktop.api import Generator, ModelSource, ParamError


def uses_model(generator: Generator) -> bool:
    """Whether ``generator`` loads a model: it has a default model, a demo model or recommended models, or it runs
    models on remote servers (``ModelSource.REMOTE``)."""
    return (generator.default_model is not None or generator.has_demo_model or bool(generator.recommended_models)
            or ModelSource.REMOTE in generator.model_sources)


def uses_local_model(generator: Generator) -> bool:
    """Whether ``generator`` loads models from this machine: it uses a model (:func:`uses_model`) that is not on a
    remote server. The model manager and the first run (downloads, demo models) are about these only; a remote
    generator's models are listed by its servers."""
    return uses_model(generator) and ModelSource.REMOTE not in generator.model_sources


def check_model_choice(generator: Generator, ref: str | None) -> None:
    """Refuse a model reference given for a generator that uses no model (:class:`ParamError`, a usage error);
    no reference, or any reference for a generator that uses models, passes (the resolver judges those)."""
    if not ref or uses_model(generator):
        return
    raise ParamError("model", ref, f"{generator.name} ({generator.id}) uses no model, so it takes none",
                     hint="Run it without a model (on the command line: leave out --model).")
