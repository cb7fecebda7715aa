"""LoRA adapters on the text generator's loaded model (``TextParams.adapter``), through transformers' PEFT
integration.

An adapter is a peft folder (``adapter_config.json``, ``adapter_model.safetensors``) — what the ``lora`` training
makes (:mod:`plugins.text.training`), or one downloaded. It is loaded once into the cached model under a name
made from its weights' SHA-256 (so a retrained adapter of the same name is another adapter), then switched on for a
job that asks for it and switched off for a job that does not: with every adapter off the LoRA layers return the
base layers' output unchanged, so such a job writes exactly what the base model writes.

torch, transformers and peft are imported only inside the functions the worker calls.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from desktop.api import AddonKind, ModelFormatError

__all__ = ["ADAPTER", "ADAPTER_KIND", "use_adapter", "adapter_digest"]

ADAPTER = "adapter"
ADAPTER_KIND = AddonKind(
    ADAPTER, "LoRA adapters",
    "Make the language model write more like some texts: LoRA adapters (peft folders) trained on your writing "
    "with Train › LoRA from your writing, or downloaded for the same base model.")
"""The text generator's add-on kind of adapters: folders, listed for the base model they were trained on."""

WEIGHTS = "adapter_model.safetensors"
log = logging.getLogger(__name__)
_DIGESTS: dict[tuple[str, int, int], str] = {}


def adapter_digest(folder: Path) -> str:
    """The SHA-256 of the adapter's weights file (remembered per path, size and modification time)."""
    weights = Path(folder) / WEIGHTS
    try:
        stat = weights.stat()
        key = (str(weights.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _DIGESTS:
            with open(weights, "rb") as f:
                _DIGESTS[key] = hashlib.file_digest(f, "sha256").hexdigest()
        return _DIGESTS[key]
    except OSError as exc:
        raise ModelFormatError(f"{Path(folder).name} is not a LoRA adapter this generator can use: it has no "
                               f"readable {WEIGHTS}.",
                               hint="Choose an adapter folder made by LoRA training (adapter_config.json and "
                                    "adapter_model.safetensors).") from exc


def use_adapter(model: Any, folder: Path | None, label: str = "") -> dict[str, Any] | None:
    """Make ``model`` (a transformers causal LM) run with the adapter in ``folder``, or with none (``None``): the
    base model exactly. Returns what the output's metadata records (``{"name", "sha256"}``), or None."""
    if folder is None:
        if getattr(model, "_hf_peft_config_loaded", False):
            _switch(model, None)
        return None
    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise ModelFormatError(f"{folder.name} is not a LoRA adapter: it has no adapter_config.json.",
                               hint="Choose an adapter folder made by LoRA training.")
    digest = adapter_digest(folder)
    name = f"adapter_{digest[:16]}"
    loaded = getattr(model, "peft_config", {}) if getattr(model, "_hf_peft_config_loaded", False) else {}
    if name not in loaded:
        try:
            info = model.load_adapter(str(folder), adapter_name=name, use_safetensors=True)  # a local folder
            mismatched, missing = getattr(info, "mismatched_keys", None), getattr(info, "missing_keys", None)
            if mismatched:
                raise ValueError(f"{len(mismatched)} of its weights have other shapes than this model's")
            if missing:
                raise ValueError(f"{len(missing)} of its weights are missing")
        except Exception as exc:
            _forget(model, name)
            raise ModelFormatError(f"The adapter {label or folder.name} does not fit this model: {_first_line(exc)}",
                                   hint="Use it with the base model it was trained on (the model list shows "
                                        "adapters for their base model), or train one for this model.") from exc
    _switch(model, name)
    return {"name": label or folder.name, "sha256": digest}


def _forget(model: Any, name: str) -> None:
    """Take the adapter ``name`` out of ``model`` again (one that failed to load), as transformers'
    ``delete_adapter`` does (refused by transformers 5.25 with peft 0.21, see :func:`_switch`)."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, dict) or name not in configs:
        return
    try:
        from peft.functional import delete_adapter

        delete_adapter(model, adapter_name=name, prefix="lora_")
    except Exception:  # left in, switched off: the next job switches to the adapter it asks for, or none
        log.warning("could not remove the adapter %s that failed to load", name, exc_info=True)
        _switch(model, None)
        return
    configs.pop(name, None)
    if not configs:
        del model.peft_config
        model._hf_peft_config_loaded = False


def _switch(model: Any, name: str | None) -> None:
    """Turn the loaded adapter ``name`` on in every LoRA layer (the others off), or all of them off (``None``).

    What transformers' ``model.set_adapter`` / ``model.disable_adapters`` do, through peft's tuner layers
    themselves: transformers 5.25 refuses those two methods with peft older than 0.22 (``load_adapter`` works), and
    Studiolo pins peft 0.21."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            if name is None:
                module.enable_adapters(False)
            else:
                module.enable_adapters(True)
                module.set_adapter(name, inference_mode=True)  # frozen: jobs only read it


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
