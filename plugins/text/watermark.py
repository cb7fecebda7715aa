"""The text generator's invisible watermark: transformers' own generation watermark (``WatermarkingConfig``, the
"green list" scheme of Kirchenbauer et al., https://huggingface.co/papers/2306.04634) and its ``WatermarkDetector``.

How it works: before each new token is drawn, the vocabulary is split at random into a "green" share and the rest,
the split seeded by the previous token and a key; green tokens get a small bonus on their logits. Marked text
holds many more green tokens than the share expects; anyone with the key and the model's tokenizer can count them
and compute how unlikely that many would be by chance (a z-score and its p-value). The text reads the same to a
person.

Studiolo's choice (:data:`GREENLIST_RATIO`, :data:`BIAS`, :data:`SEEDING_SCHEME`, :data:`CONTEXT_WIDTH`,
:data:`HASHING_KEY`):

* a quarter of the vocabulary green and a bias of 2.0 — the paper's middle setting: a few hundred tokens are
  detected with overwhelming confidence while the text's quality barely changes (a larger bias marks more strongly
  but starts to bend the wording, a smaller one needs much longer texts);
* ``lefthash`` over one previous token: each token's green list depends only on the token before it, so an edit
  spoils the evidence of the two tokens around it and no more, and checking costs one shuffle per token
  (``selfhash`` tries forty candidates per token);
* a fixed key of our own (the prime after the bytes ``Stud``), so Studiolo's marks are not counted as those of
  other programs that keep transformers' default key. The key is public (this file): the mark says "written by
  Studiolo with this setting", it is no secret signature — anyone can check it, and anyone who wants to can forge
  or scrub it.

Limits: paraphrasing or translating removes it; a short text cannot be judged (:data:`MIN_TOKENS`); checking needs
the same model's tokenizer and vocabulary size, and the same kind of device as the generation (transformers draws
the green lists from a torch generator on that device, and CPU and CUDA generators draw differently).

torch and transformers are imported only inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from desktop.api import StudioloError, WatermarkCheck

__all__ = ["METHOD", "Z_THRESHOLD", "MIN_TOKENS", "watermarking_config", "config_record", "detect", "check_file",
           "device_type"]

GREENLIST_RATIO = 0.25
BIAS = 2.0
SEEDING_SCHEME = "lefthash"
CONTEXT_WIDTH = 1
HASHING_KEY = 1_400_141_167
"""The key seeding the green lists: the first prime after ``int.from_bytes(b"Stud")``."""
METHOD = "transformers WatermarkingConfig (lefthash)"
Z_THRESHOLD = 4.0
"""The z-score above which a text counts as marked: a chance of about 3 in 100,000 (p ≈ 3.2e-5) that unmarked
text scores this high — the paper's threshold, strict because a false "marked" is worse than a missed one."""
MIN_TOKENS = 25
"""Fewer different token pairs than this is too few to tell: even a strongly marked text (about 65 % green, a model
with many good choices at each token) needs about 25 tokens to pass :data:`Z_THRESHOLD`. In practice 100–200 are
needed: texts of the demo model are about 50 % green and pass at about 60–100 tokens (z ≈ 5 at 100, 7–9 at 200)."""
MAX_TEXT_BYTES = 16 * 1024 * 1024
"""The largest text file checked (a text output is a few kB)."""


def watermarking_config(record: dict[str, Any] | None = None) -> Any:
    """The ``transformers.WatermarkingConfig`` of ``record`` (a :func:`config_record`), Studiolo's own when None."""
    from transformers import WatermarkingConfig

    values = {key: (record or {}).get(key, default) for key, default in _defaults().items()}
    return WatermarkingConfig(**values)


def config_record(device: str = "cpu") -> dict[str, Any]:
    """What the output's metadata records under ``watermark`` (JSON): the method, the settings the detector needs
    again and the kind of device the text was generated on (``cpu``, ``cuda``, ``mps``)."""
    return {"method": METHOD, **_defaults(), "device": device_type(device)}


def device_type(device: Any) -> str:
    """``cuda`` for ``cuda:1`` or a ``torch.device``; the green lists depend on the kind of device, not its index."""
    return str(getattr(device, "type", device)).split(":")[0] or "cpu"


def detect(text: str, tokenizer: Any, model_config: Any, record: dict[str, Any] | None = None,
           device: str = "cpu") -> WatermarkCheck:
    """Look for the mark in ``text``: tokenize it with the model's ``tokenizer`` (no special tokens), score its
    token pairs with ``WatermarkDetector`` and the settings of ``record`` (Studiolo's own when None), on ``device``
    (the kind of device the text was generated on). ``model_config``: the model's config (its vocabulary size and
    BOS token). Repeated token pairs count once (a loop of the same words is not evidence many times over).

    ``score`` is the detector's confidence, 1 − p-value; ``detected`` is ``z > Z_THRESHOLD``. Under
    :data:`MIN_TOKENS` scored tokens: ``detected=False`` with the reason. Never raises for odd text."""
    import torch
    from transformers import WatermarkDetector

    config = watermarking_config(record)
    method = f"transformers WatermarkingConfig ({config.seeding_scheme})"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    text_config = model_config.get_text_config() if hasattr(model_config, "get_text_config") else model_config
    detector = WatermarkDetector(model_config=text_config, device=device, watermarking_config=config,
                                 ignore_repeated_ngrams=True)
    width = config.context_width
    pairs = len({tuple(ids[i - width:i + 1]) for i in range(width, len(ids))})
    if pairs < MIN_TOKENS:
        return WatermarkCheck(method, False, 0.0,
                              f"too short to tell: {pairs} different token pairs, at least {MIN_TOKENS} are needed")
    out = detector(torch.tensor([ids], device=device), z_threshold=Z_THRESHOLD, return_dict=True)
    z = float(out.z_score[0])
    scored = int(out.num_tokens_scored[0])
    green = float(out.green_fraction[0])
    score = float(out.confidence[0])
    if not math.isfinite(score):
        score = 0.0
    detected = bool(z > Z_THRESHOLD)
    return WatermarkCheck(method, detected, score,
                          f"{green:.0%} of {scored} tokens green (expected {config.greenlist_ratio:.0%}), "
                          f"z = {z:.1f} ({'over' if detected else 'under'} {Z_THRESHOLD:g})")


def check_file(path: Path, metadata: Mapping[str, Any] | None, model_path: Path) -> WatermarkCheck:
    """:meth:`TransformersTextGenerator.detect_watermark`: read the UTF-8 text at ``path`` and :func:`detect` the
    mark with the settings of the metadata's ``watermark`` record (Studiolo's own when it has none), loading only the
    tokenizer and the config of the model folder ``model_path`` (no weights). Never raises: a file or model that
    cannot be used gives ``detected=False`` with the reason."""
    record = _record_in(metadata)
    method = f"transformers WatermarkingConfig ({(record or {}).get('seeding_scheme', SEEDING_SCHEME)})"
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_TEXT_BYTES + 1)
        if len(data) > MAX_TEXT_BYTES:
            return WatermarkCheck(method, False, 0.0, f"{Path(path).name} is too large to be a text output")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return WatermarkCheck(method, False, 0.0, f"{Path(path).name} could not be read as UTF-8 text: "
                                                  f"{_first_line(exc)}")
    try:
        marked_on = (record or {}).get("device", "cpu")
        device = _check_device(marked_on)
        if device is None:
            return WatermarkCheck(method, False, 0.0,
                                  f"the text was marked on a {marked_on} device and this computer has none; the check "
                                  "needs the same kind (the green lists come from that device's random generator)")
        tokenizer, config = _tokenizer_and_config(Path(model_path))
        return detect(text, tokenizer, config, record, device=device)
    except StudioloError as exc:
        return WatermarkCheck(method, False, 0.0, exc.message.rstrip("."))
    except Exception as exc:  # settings in the record transformers refuses, a tokenizer that fails on this text…
        return WatermarkCheck(method, False, 0.0, f"could not be checked: {_first_line(exc)}")


def _record_in(metadata: Any) -> dict[str, Any] | None:
    """The ``watermark`` record of a saved file's metadata (under ``output``, where the host puts what ``generate``
    recorded) or of the output's own metadata (at the top); None when there is none."""
    if not isinstance(metadata, Mapping):
        return None
    for holder in (metadata, metadata.get("output")):
        record = holder.get("watermark") if isinstance(holder, Mapping) else None
        if isinstance(record, Mapping):
            return dict(record)
    return None


def _tokenizer_and_config(folder: Path) -> tuple[Any, Any]:
    """The tokenizer and config of the model folder, offline; the file at fault named as loading a model would."""
    from desktop.api import ModelFormatError, ModelNotFoundError
    from plugins.text.model_folder import check_config_files, tokenizer_problem

    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{folder} is not a transformers model folder (no config.json), so the text's "
                                 "tokens cannot be read back")
    check_config_files(folder)
    from transformers import AutoConfig, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:
        raise tokenizer_problem(folder) or ModelFormatError(
            f"the tokenizer of {folder.name} could not be loaded: {_first_line(exc)}") from exc
    return tokenizer, AutoConfig.from_pretrained(str(folder), local_files_only=True)


def _check_device(recorded: Any) -> str | None:
    """The device to check on: the kind the text was generated on, when this machine has one; None otherwise."""
    kind = device_type(recorded) if isinstance(recorded, str) else "cpu"
    if kind == "cpu":
        return "cpu"
    import torch

    if kind == "cuda" and torch.cuda.is_available():
        return "cuda"
    if kind == "mps" and torch.backends.mps.is_available():
        return "mps"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__


def _defaults() -> dict[str, Any]:
    return {"greenlist_ratio": GREENLIST_RATIO, "bias": BIAS, "hashing_key": HASHING_KEY,
            "seeding_scheme": SEEDING_SCHEME, "context_width": CONTEXT_WIDTH}
