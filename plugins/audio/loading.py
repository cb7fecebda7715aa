"""Loading the audio models' folders offline: checks that name the problem, and load errors made readable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import (
    InsufficientMemoryError,
    ModelFormatError,
    ModelNotFoundError,
    check_json_files,
    check_model_files,
    read_json_object,
)

TOKENIZER_FILES = ("vocab.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "spiece.model")
TOKENIZER_JSON_FILES = ("vocab.json", "tokenizer.json", "tokenizer_config.json", "added_tokens.json",
                        "special_tokens_map.json")
"""The tokenizer's JSON files, each a JSON object."""
MAX_TOKENIZER_BYTES = 128 * 1024 * 1024
"""The largest tokenizer file read (the largest real ones are a few tens of MB)."""


def check_model_folder(path: Path, what: str, model_types: tuple[str, ...], allow_pickle: bool) -> str:
    """Check that ``path`` is a transformers folder of one of ``model_types`` with a tokenizer and sound weight
    files; return its ``model_type``. :class:`ModelNotFoundError` / :class:`ModelFormatError` name the problem.

    ``what`` names the kind of model for messages (``"text-to-speech voice"``).
    """
    if not path.exists():
        raise ModelNotFoundError(f"No model at {path}.", hint=f"Choose a {what} folder, a hub model, or 'demo'.")
    if not path.is_dir():
        raise ModelFormatError(f"{path.name} is a single file, but a {what} is a folder (config.json, tokenizer "
                               "files and weights).", hint="Choose the model's folder, or download it by its hub name.")
    config_file = path / "config.json"
    if not (config_file.exists() or config_file.is_symlink()):
        raise ModelFormatError(f"{path.name or path} is not a transformers model folder: it has no config.json.",
                               hint="Choose the folder that holds config.json, or download the model again.")
    model_type = read_json_object(config_file).get("model_type")  # not JSON, not an object, a pipe: named
    if model_type not in model_types:
        raise ModelFormatError(f"{path.name} is a {model_type or 'unknown'} model, not a {what} "
                               f"({' or '.join(model_types)}).", hint=f"Choose a {what}.")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise ModelFormatError(f"{path.name} has no tokenizer (no vocab.json, tokenizer.json or tokenizer_config.json)"
                               ", so its text cannot be read.",
                               hint="Copy the tokenizer files from the model's original repository into the folder, "
                                    "or download the model again.")
    # each a JSON object, else named here rather than in a bare JSON error
    check_json_files(path, TOKENIZER_JSON_FILES, max_bytes=MAX_TOKENIZER_BYTES)
    check_model_files(path, allow_pickle=allow_pickle)  # corrupt safetensors, pickle refused: naming the file
    return model_type


def load_pretrained(loader: Any, path: Path, allow_pickle: bool) -> Any:
    """``loader.from_pretrained(path)``: offline, safetensors unless ``allow_pickle``, errors a person can act on."""
    try:
        return loader.from_pretrained(str(path), local_files_only=True,
                                      use_safetensors=None if allow_pickle else True)
    except MemoryError as exc:
        raise InsufficientMemoryError(f"There is not enough memory to load {path.name}.",
                                      hint="Close other models or programs, or choose a smaller model.") from exc
    except Exception as exc:  # OSError, ValueError, RuntimeError… from transformers or safetensors
        raise ModelFormatError(f"{path.name} could not be loaded: {first_line(exc)}",
                               hint="Download the model again, or choose another model.") from exc


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
