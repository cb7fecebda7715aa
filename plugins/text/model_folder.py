"""Checks on a transformers model folder that name the file at fault: before loading (its small JSON files must be
objects) and after the tokenizer failed to load (which tokenizer file is broken, and how).

transformers reads ``config.json`` while it loads the tokenizer, so a broken config would otherwise be blamed on
"the tokenizer"; and a garbage ``tokenizer.json`` surfaces as a bare JSON or Rust error naming no file.
"""

from __future__ import annotations

from pathlib import Path

from desktop.api import ModelFormatError, check_json_files

CONFIG_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "special_tokens_map.json")
"""The model folder's small JSON files, each a JSON object: checked before loading."""
TOKENIZER_JSON_FILES = ("tokenizer.json", "vocab.json", "added_tokens.json")
"""The tokenizer's own JSON files (tokenizer.json can be tens of MB): checked when the tokenizer fails to load."""
MAX_TOKENIZER_BYTES = 128 * 1024 * 1024
"""The largest tokenizer file read (the largest real ones are a few tens of MB)."""


def check_config_files(folder: Path) -> None:
    """Raise :class:`ModelFormatError` naming the first of :data:`CONFIG_FILES` in ``folder`` that is not a JSON
    object (not JSON, JSON of another kind, a pipe…)."""
    check_json_files(folder, CONFIG_FILES)


def tokenizer_problem(folder: Path) -> ModelFormatError | None:
    """Why the tokenizer in ``folder`` cannot be loaded, naming the file: a JSON file that is not a JSON object,
    or a ``tokenizer.json`` the tokenizers library cannot read (a wrong shape). None when no file is at fault."""
    try:
        check_json_files(folder, (*TOKENIZER_JSON_FILES, *CONFIG_FILES), max_bytes=MAX_TOKENIZER_BYTES)
    except ModelFormatError as exc:
        return exc
    file = folder / "tokenizer.json"
    if not file.exists():
        return None
    from tokenizers import Tokenizer

    try:
        Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust library raises a bare Exception
        return ModelFormatError(f"{file} is not a tokenizer the tokenizers library can read: {_first_line(exc)}.",
                                hint="Copy tokenizer.json from the model's original repository, or download the "
                                     "model again.")
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__
