"""Writing GGUF files: NumPy weights of a Qwen2 (or Llama) model and its byte-level BPE tokenizer → one ``.gguf``
file, with the ``gguf`` package's :class:`gguf.GGUFWriter`; and quantising a GGUF file with llama.cpp's own quantizer.

* :func:`write_gguf` — the core: HF tensor names are mapped to GGUF names with :func:`gguf.get_tensor_name_map`;
  norms and biases are written F32, matrices F16 (``dtype="f16"``) or F32 (``dtype="f32"``). ``qwen2`` needs no
  reordering of the weights (NEOX rope, like HF); ``llama`` gets the same permutation of the query and key rows that
  llama.cpp's ``convert_hf_to_gguf.py`` applies (HF's rotate-half order → llama.cpp's interleaved rope).
* :func:`convert_transformers_folder` — a ``save_pretrained`` folder (``config.json``, ``*.safetensors``,
  ``tokenizer.json``, ``tokenizer_config.json``) → GGUF, read with ``safetensors``/``tokenizers`` only (no torch,
  no transformers).
* :func:`quantize` — through ``llama_cpp.llama_model_quantize``: ``"Q8_0"``, ``"Q4_K_M"``, ``"Q4_0"``, …
  (:data:`QUANTIZATIONS`).

Every file is written to a temporary file beside the destination (``.<name>.XXXXXXXX.tmp``) and moved into place
with ``os.replace`` only when complete; on any failure the temporary file is removed and the destination is left
as it was.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import ModelFormatError, atomic_path

__all__ = ["ModelConfig", "write_gguf", "convert_transformers_folder", "quantize", "QUANTIZATIONS",
           "SUPPORTED_ARCHITECTURES"]

SUPPORTED_ARCHITECTURES = ("qwen2", "llama")
"""The architectures :func:`write_gguf` writes (GGUF names; HF ``Qwen2ForCausalLM`` / ``LlamaForCausalLM``)."""

QUANTIZATIONS = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q5_0", "Q4_K_M", "Q4_K_S", "Q4_0", "Q3_K_M", "Q2_K",
                 "F16", "BF16", "F32")
"""The kinds :func:`quantize` offers (llama.cpp file types), most faithful first."""

_HF_ARCHITECTURES = {"Qwen2ForCausalLM": "qwen2", "LlamaForCausalLM": "llama"}

# Pre-tokenizer regexes of known tokenizer families → llama.cpp's pre-tokenizer names ("default" otherwise).
_CONTRACTIONS = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|"
_REST = r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
_PRE_TOKENIZERS = {
    _CONTRACTIONS + r"\p{N}|" + _REST: "qwen2",
    _CONTRACTIONS + r"\p{N}{1,3}|" + _REST: "llama-bpe",
}


@dataclass(frozen=True)
class ModelConfig:
    """The shape of a decoder-only model, as GGUF needs it. ``architecture`` is a GGUF name (``"qwen2"``)."""

    architecture: str
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    context_length: int
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    name: str = ""

    @classmethod
    def from_hf(cls, config: Mapping[str, Any], *, name: str = "") -> ModelConfig:
        """From a transformers ``config.json`` (a dict) of ``Qwen2ForCausalLM`` or ``LlamaForCausalLM``."""
        architectures = config.get("architectures") or []
        arch = next((_HF_ARCHITECTURES[a] for a in architectures if a in _HF_ARCHITECTURES), None)
        if arch is None:
            arch = {"qwen2": "qwen2", "llama": "llama"}.get(str(config.get("model_type")))
        if arch is None:
            raise ModelFormatError(
                f"Cannot convert a {'/'.join(map(str, architectures)) or config.get('model_type')!s} model to GGUF.",
                hint=f"The converter knows {', '.join(_HF_ARCHITECTURES)}; download a ready-made GGUF instead.")
        if config.get("rope_scaling"):
            raise ModelFormatError("Cannot convert a model with rope scaling to GGUF.",
                                   hint="Download a ready-made GGUF of this model instead.")
        heads = int(config["num_attention_heads"])
        return cls(architecture=arch, vocab_size=int(config["vocab_size"]), hidden_size=int(config["hidden_size"]),
                   intermediate_size=int(config["intermediate_size"]), num_layers=int(config["num_hidden_layers"]),
                   num_heads=heads, num_kv_heads=int(config.get("num_key_value_heads") or heads),
                   context_length=int(config.get("max_position_embeddings") or 2048),
                   rope_theta=float(config.get("rope_theta") or 10000.0),
                   rms_norm_eps=float(config.get("rms_norm_eps") or 1e-6), name=name)


def write_gguf(dest: Path, weights: Mapping[str, Any], config: ModelConfig, tokenizer: Any, *,
               dtype: str = "f16", chat_template: str | None = None, bos_token: str | None = None,
               eos_token: str | None = None, eot_token: str | None = None) -> Path:
    """Write the model to the GGUF file ``dest`` (atomically) and return ``dest``.

    ``weights``: HF tensor names (``model.layers.0.self_attn.q_proj.weight``, …) → NumPy arrays (any float dtype);
    a missing ``lm_head.weight`` means tied embeddings (llama.cpp then reuses ``token_embd``). ``tokenizer``: a
    byte-level BPE ``tokenizers.Tokenizer`` or a transformers fast tokenizer (its ``backend_tokenizer`` is used, and
    its ``chat_template``/``bos_token``/``eos_token`` where the arguments are None). ``dtype``: ``"f16"`` or ``"f32"``
    for the matrices (norms and biases are always F32). The tokenizer is written as GGUF's ``gpt2`` model with
    special tokens as CONTROL tokens and ``add_bos_token`` false.
    """
    import gguf
    import numpy as np

    if dtype not in ("f16", "f32"):
        raise ValueError(f"dtype must be 'f16' or 'f32', not {dtype!r}")
    if config.architecture not in SUPPORTED_ARCHITECTURES:
        raise ModelFormatError(f"Cannot write a {config.architecture!r} model to GGUF.",
                               hint=f"The converter knows {', '.join(SUPPORTED_ARCHITECTURES)}.")
    chat_template = chat_template if chat_template is not None else _text_attr(tokenizer, "chat_template")
    bos_token = bos_token if bos_token is not None else _text_attr(tokenizer, "bos_token")
    eos_token = eos_token if eos_token is not None else _text_attr(tokenizer, "eos_token")
    vocab = _vocab(getattr(tokenizer, "backend_tokenizer", tokenizer), config.vocab_size)

    dest = Path(dest)
    with atomic_path(dest, mode=0o644) as tmp:  # a model file is an ordinary file
        writer = gguf.GGUFWriter(tmp, config.architecture)
        try:
            _add_model_keys(writer, config, dtype)
            writer.add_tokenizer_model("gpt2")
            writer.add_tokenizer_pre(vocab.pre)
            writer.add_token_list(vocab.tokens)
            writer.add_token_types(vocab.types)
            writer.add_token_merges(vocab.merges)
            for key, token in (("bos", bos_token), ("eos", eos_token), ("eot", eot_token)):
                if token is not None:
                    getattr(writer, f"add_{key}_token_id")(vocab.id_of(token))
            writer.add_add_bos_token(False)
            if chat_template:
                writer.add_chat_template(chat_template)
            names = gguf.get_tensor_name_map(gguf.MODEL_ARCH[config.architecture.upper()], config.num_layers)
            for hf_name, array in weights.items():
                if hf_name.endswith("rotary_emb.inv_freq"):
                    continue
                gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
                if gguf_name is None:
                    raise ModelFormatError(f"Cannot convert the tensor {hf_name!r} to GGUF: it is not part of a "
                                           f"{config.architecture} model.", hint="Check that the model is complete.")
                data = np.asarray(array)
                if config.architecture == "llama" and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
                    heads = config.num_heads if hf_name.endswith("q_proj.weight") else config.num_kv_heads
                    data = _permute_rope(data, heads)
                wide = data.ndim >= 2 and dtype == "f16"
                writer.add_tensor(gguf_name, np.ascontiguousarray(data, dtype=np.float16 if wide else np.float32))
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()  # also when writing failed: the temporary file is removed next
    return dest


def convert_transformers_folder(src_folder: Path, dest_file: Path, dtype: str = "f16") -> Path:
    """Convert a transformers ``save_pretrained`` folder of a Qwen2 or Llama model (safetensors weights, F32, F16
    or BF16; a byte-level BPE ``tokenizer.json``) to the GGUF file ``dest_file``; return ``dest_file``."""
    from tokenizers import Tokenizer

    src = Path(src_folder)
    config = _read_json(src / "config.json")
    model_config = ModelConfig.from_hf(config, name=src.name)
    tokenizer_config = _read_json(src / "tokenizer_config.json") if (src / "tokenizer_config.json").is_file() else {}
    template = tokenizer_config.get("chat_template")
    if (src / "chat_template.jinja").is_file():
        template = (src / "chat_template.jinja").read_text(encoding="utf-8")
    if not isinstance(template, str):  # absent, or a list of named templates: keep the default one
        named = {t.get("name"): t.get("template") for t in template or [] if isinstance(t, dict)}
        template = named.get("default")
    if not (src / "tokenizer.json").is_file():
        raise ModelFormatError(f"{src} has no tokenizer.json.",
                               hint="Only models with a fast (byte-level BPE) tokenizer can be converted to GGUF.")
    try:
        tokenizer = Tokenizer.from_file(str(src / "tokenizer.json"))
    except Exception as exc:  # the tokenizers library raises its own exception types
        raise ModelFormatError(f"Cannot read {src / 'tokenizer.json'}: {exc}.",
                               hint="The file may be damaged: download or save the model again.") from exc
    weights = _read_safetensors(src)
    return write_gguf(Path(dest_file), weights, model_config, tokenizer, dtype=dtype, chat_template=template,
                      bos_token=_token_text(tokenizer_config.get("bos_token")),
                      eos_token=_token_text(tokenizer_config.get("eos_token")))


def quantize(src: Path, dest: Path, kind: str, *, threads: int = 0) -> Path:
    """Quantise the GGUF file ``src`` to ``dest`` (atomically) with llama.cpp's quantizer; ``kind`` is one of
    :data:`QUANTIZATIONS` (e.g. ``"Q4_K_M"``); ``threads`` 0 lets llama.cpp choose. Returns ``dest``."""
    import ctypes

    import llama_cpp

    from plugins.gguf.gguf_file import read_header
    from plugins.gguf.llama_log import captured_log

    src, dest = Path(src), Path(dest)
    ftype = _ftype(kind)
    read_header(src)  # a file that is not GGUF, or a damaged one, is refused here, before llama.cpp reads it
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    with atomic_path(dest, mode=0o644) as tmp:  # a model file is an ordinary file
        with captured_log() as log:  # the quantizer logs every tensor
            failed = llama_cpp.llama_model_quantize(os.fsencode(src), os.fsencode(tmp), ctypes.byref(params))
        if failed:
            reason = next((line.strip() for line in reversed(log) if "fail" in line or "error" in line), "")
            raise ModelFormatError(f"llama.cpp could not quantise {src} to {kind}" + (f": {reason}" if reason else "."),
                                   hint="Check that it is a complete GGUF file of an architecture llama.cpp knows.")
    return dest


# ---- the tokenizer ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Vocab:
    tokens: list[str]
    types: list[int]
    merges: list[str]
    pre: str
    ids: dict[str, int]

    def id_of(self, token: str) -> int:
        if token not in self.ids:
            raise ModelFormatError(f"The tokenizer has no token {token!r}.", hint="Check the tokenizer's files.")
        return self.ids[token]


def _vocab(tokenizer: Any, vocab_size: int) -> _Vocab:
    """Tokens (padded to the model's vocabulary size with unused ``[PAD<n>]``), types and merges of a byte-level BPE
    ``tokenizers.Tokenizer``, and the llama.cpp pre-tokenizer that splits text like it."""
    import gguf

    spec = json.loads(tokenizer.to_str())
    model = spec.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(spec.get("pre_tokenizer")):
        raise ModelFormatError("Only byte-level BPE tokenizers (GPT-2, Qwen2, Llama 3 style) can be written to GGUF.",
                               hint="Download a ready-made GGUF of this model instead.")
    ids = tokenizer.get_vocab(with_added_tokens=True)
    if len(ids) > vocab_size:
        raise ModelFormatError(f"The tokenizer has {len(ids)} tokens, more than the model's {vocab_size}.",
                               hint="Check that the tokenizer belongs to this model.")
    added = tokenizer.get_added_tokens_decoder()
    tokens = [f"[PAD{i}]" for i in range(vocab_size)]
    types = [int(gguf.TokenType.UNUSED)] * vocab_size
    for text, index in ids.items():
        tokens[index] = text
        if index in added:
            types[index] = int(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            types[index] = int(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    patterns = re.findall(r'"Regex":\s*("(?:[^"\\]|\\.)*")', json.dumps(spec.get("pre_tokenizer")))
    pre = next((_PRE_TOKENIZERS[json.loads(p)] for p in patterns if json.loads(p) in _PRE_TOKENIZERS), "default")
    return _Vocab(tokens, types, merges, pre, ids)


def _text_attr(tokenizer: Any, name: str) -> str | None:
    value = getattr(tokenizer, name, None)
    return value if isinstance(value, str) else None


def _token_text(value: Any) -> str | None:
    """A ``tokenizer_config.json`` token entry: a string, or an AddedToken dict with ``content``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


# ---- the weights -----------------------------------------------------------------------------------------------


def _add_model_keys(writer: Any, config: ModelConfig, dtype: str) -> None:
    import gguf

    writer.add_name(config.name or f"{config.architecture} model")
    writer.add_context_length(config.context_length)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_heads)
    writer.add_head_count_kv(config.num_kv_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_heads)
    writer.add_rope_freq_base(config.rope_theta)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if dtype == "f16" else gguf.LlamaFileType.ALL_F32)


def _permute_rope(weights: Any, heads: int) -> Any:
    """HF Llama's query/key rows (rotate-half) → llama.cpp's order, as ``convert_hf_to_gguf.py``'s ``permute``."""
    return (weights.reshape(heads, 2, weights.shape[0] // heads // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _read_safetensors(folder: Path) -> dict[str, Any]:
    """Every tensor of the folder's ``*.safetensors`` files as NumPy arrays (BF16 widened to F32)."""
    import numpy as np
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ModelFormatError(f"{folder} has no .safetensors weights.",
                               hint="Save the model with save_pretrained (safetensors), or download a GGUF.")
    weights: dict[str, Any] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="np") as f:
                names = list(f.keys())
                for name in names:
                    weights[name] = f.get_tensor(name)
        except (TypeError, ValueError) as exc:  # numpy has no bfloat16: read the raw bits
            if "bf16" not in str(exc).lower() and "bfloat16" not in str(exc).lower():
                raise ModelFormatError(f"Cannot read the weights in {file}: {exc}.",
                                       hint="The file may be damaged: download or save it again.") from exc
            weights.update(_read_bf16_safetensors(file, np))
        except Exception as exc:
            raise ModelFormatError(f"Cannot read the weights in {file}: {exc}.",
                                   hint="The file may be damaged: download or save it again.") from exc
    return weights


def _read_bf16_safetensors(file: Path, np: Any) -> dict[str, Any]:
    """A safetensors file holding BF16 tensors, read with the ``gguf`` package's reader and widened to F32."""
    from gguf.utility import SafetensorsLocal

    out = {}
    with SafetensorsLocal(file) as tensors:
        for name, tensor in tensors.items():
            raw = tensor.mmap_bytes()
            if tensor.dtype == "BF16":
                data = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                data = raw.view({"F32": np.float32, "F16": np.float16}[tensor.dtype])
            out[name] = data.reshape(tensor.shape)
    return out


# ---- files -----------------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFormatError(f"Cannot read {path}: {exc}.", hint="Check the model folder is complete.") from exc
    if not isinstance(value, dict):
        raise ModelFormatError(f"{path} is not a JSON object.", hint="Check the model folder is complete.")
    return value


def _ftype(kind: str) -> int:
    import llama_cpp

    name = "LLAMA_FTYPE_ALL_F32" if kind == "F32" else f"LLAMA_FTYPE_MOSTLY_{kind}"
    if kind not in QUANTIZATIONS or not hasattr(llama_cpp, name):
        raise ValueError(f"unknown quantisation {kind!r}; one of {', '.join(QUANTIZATIONS)}")
    return int(getattr(llama_cpp, name))
