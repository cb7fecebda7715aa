"""Checks on a diffusers model folder that name the part and the file at fault, before diffusers reads it.

diffusers reports a part missing from the folder as "no file named config.json found in directory <the model>",
a broken config as a bare JSON error, and a garbage tokenizer file as a Rust error naming no file. Here,
``model_index.json`` is read first and each part it lists is checked against the folder: present, with its
configuration, each small JSON file a JSON object. The tokenizers' own files (large) are checked only when loading
failed (:func:`tokenizer_problem`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, check_json_files, read_json_object

PART_JSON_FILES = ("config.json", "scheduler_config.json", "preprocessor_config.json", "tokenizer_config.json",
                   "special_tokens_map.json")
"""A part's small JSON files, each a JSON object: checked before loading."""
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json", "tokenizer.model", "spiece.model")
"""Files of which a tokenizer part needs at least one."""
MAX_TOKENIZER_BYTES = 128 * 1024 * 1024
"""The largest tokenizer file read (the largest real ones are a few tens of MB)."""
_HINT = "The model is incomplete: download it again, or copy {what} from the model's original repository."


def check_diffusers_folder(folder: Path) -> dict[str, Any]:
    """Check the diffusers folder ``folder`` (which holds ``model_index.json``) against its ``model_index.json``
    and return that index. :class:`ModelFormatError` names the file or part at fault: an index that is not a JSON
    object or names no pipeline, a part it lists that has no folder, a part without its configuration file or
    tokenizer files, a part's JSON file that is not a JSON object. Parts listed as ``[null, null]`` are left out
    on purpose (no safety checker) and are not checked. Weights are not looked at (a single-file checkpoint's
    configuration folder has none; the host checks weight files)."""
    index_file = folder / "model_index.json"
    index = read_json_object(index_file)
    if not isinstance(index.get("_class_name"), str):
        raise ModelFormatError(f"{index_file} does not name its pipeline (its \"_class_name\" is "
                               f"{index.get('_class_name')!r}).", hint=_HINT.format(what="model_index.json"))
    for part, spec in index.items():
        if part.startswith("_") or not isinstance(spec, list) or all(item is None for item in spec):
            continue  # "_class_name" and such, plain settings, and parts left out
        if len(spec) != 2 or not all(isinstance(item, str) for item in spec):
            raise ModelFormatError(f"{index_file} lists the part {part!r} as {spec!r}, not as [library, class].",
                                   hint=_HINT.format(what="model_index.json"))
        _check_part(folder, part, spec[1])
    return index


def _check_part(folder: Path, part: str, class_name: str) -> None:
    path = folder / part
    if not path.is_dir():
        raise ModelFormatError(f"{folder} has no {part}/ folder, a part its model_index.json lists "
                               f"({class_name}).", hint=_HINT.format(what=f"the {part}/ folder"))
    if "Tokenizer" in class_name:
        if not any((path / name).is_file() for name in TOKENIZER_FILES):
            raise ModelFormatError(f"{path} has no tokenizer files (no tokenizer.json, vocab.json or "
                                   f"tokenizer_config.json) for its {class_name}.",
                                   hint=_HINT.format(what=f"the {part}/ folder"))
    else:
        config = _config_file_of(class_name)
        if not (path / config).is_file():
            raise ModelFormatError(f"{path} has no {config}, the configuration of its {class_name}.",
                                   hint=_HINT.format(what=f"{part}/{config}"))
    check_json_files(path, PART_JSON_FILES)


def _config_file_of(class_name: str) -> str:
    """The configuration file diffusers reads for a part of class ``class_name``."""
    if class_name.endswith("Scheduler"):
        return "scheduler_config.json"
    if class_name.endswith(("FeatureExtractor", "ImageProcessor", "Processor")):
        return "preprocessor_config.json"
    return "config.json"


def tokenizer_problem(folder: Path, index: dict[str, Any]) -> ModelFormatError | None:
    """After loading failed: the tokenizer file at fault in one of the tokenizer parts of ``index``, named (not a
    JSON object, or a ``tokenizer.json`` the tokenizers library cannot read); None when none is at fault."""
    for part, spec in index.items():
        if part.startswith("_") or not isinstance(spec, list) or "Tokenizer" not in str(spec[-1] if spec else ""):
            continue
        try:
            check_json_files(folder / part, ("tokenizer.json", "vocab.json"), max_bytes=MAX_TOKENIZER_BYTES)
        except ModelFormatError as exc:
            return exc
        file = folder / part / "tokenizer.json"
        if not file.exists():
            continue
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust library raises a bare Exception
            text = str(exc).strip().splitlines()
            return ModelFormatError(f"{file} is not a tokenizer the tokenizers library can read: "
                                    f"{text[0].rstrip('.') if text else type(exc).__name__}.",
                                    hint=_HINT.format(what=f"{part}/tokenizer.json"))
    return None
