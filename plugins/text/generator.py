"""``text.transformers``: causal language models through transformers — continue a text or chat, streaming.

* **load** takes a transformers model folder (a ``save_pretrained`` folder or a downloaded hub repo): the tokenizer
  and ``AutoModelForCausalLM``, offline, safetensors only unless pickle weights were allowed. The handle keeps the
  model's context length.
* **generate** builds the prompt (:mod:`plugins.text.prompting`), drops its start with a warning when it does not
  fit the context with the new tokens, and streams the answer token by token (:mod:`plugins.text.streaming`):
  each final chunk of text goes to ``ctx.preview``, each token to ``ctx.progress``; stop sequences end the text and
  are left out of it (and of the stream); a cancel lands within a token and keeps the text so far.

Reproducibility: temperature 0 is greedy (nothing random). Otherwise transformers samples from torch's global
random generator (``generate`` takes no generator), so the whole generation runs inside ``ctx.hold_global_rng()``:
the same seed gives the same text, whatever other jobs run at the same time.

torch and transformers are imported only inside the methods the worker thread calls.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import (
    Generator,
    InsufficientMemoryError,
    JobCancelled,
    LoadOptions,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
    RecommendedModel,
    RunContext,
    TextOutput,
    TrainingContext,
    TrainingResult,
    WatermarkCheck,
    check_model_files,
)
from plugins.text.adapters import ADAPTER, ADAPTER_KIND, use_adapter
from plugins.text.model_folder import check_config_files, tokenizer_problem
from plugins.text.params import TextParams
from plugins.text.prompting import build_prompt, fit_context, truncation_notice
from plugins.text.training import LORA_TRAINING, train_lora

__all__ = ["TransformersTextGenerator", "TextModel", "load_text_model", "context_length_of"]

DEFAULT_CONTEXT = 2048
"""The context length assumed when neither the config nor the tokenizer states one."""
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer.model", "spiece.model", "vocab.json", "vocab.txt", "tokenizer_config.json",
)
"""Files of which a model folder needs at least one: without them its text cannot be tokenized."""
_GB = 1_000_000_000


@dataclass
class TextModel:
    """The handle ``load`` returns: the model, its tokenizer, where they run and how much text the model reads."""

    model: Any
    tokenizer: Any
    device: str
    context_length: int
    source: Path

    def size_bytes(self) -> int:
        """Bytes held by the model's parameters."""
        return sum(p.numel() * p.element_size() for p in self.model.parameters())

    def eos_ids(self) -> set[int]:
        """The token ids that end generation (the generation config's, else the tokenizer's)."""
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])


class TransformersTextGenerator(Generator):
    """Text generation with transformers causal language models."""

    id = "text.transformers"
    name = "Text (language model)"
    kind = "text"
    version = "0.1.0"
    description = "Continue a text or chat with an assistant, with a language model running on this computer."
    Params = TextParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "transformers")
    addon_kinds = (ADAPTER_KIND,)  # LoRA adapters (plugins/text/adapters.py), applied with the `adapter` param
    training_kinds = (LORA_TRAINING,)  # a LoRA from your writing (plugins/text/training.py)
    # Sizes: the safetensors weights (bfloat16), written by hand (the hub was not reachable); approximate.
    recommended_models = (
        RecommendedModel("HuggingFaceTB/SmolLM2-360M-Instruct", "SmolLM2 360M Instruct",
                         "A small, fast English assistant: runs on any laptop CPU; simple answers and rewrites.",
                         size_bytes=int(0.72 * _GB), size_checked="2026-11", license="Apache-2.0"),
        RecommendedModel("Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B Instruct",
                         "A small multilingual assistant with a long context; quick on a laptop CPU.",
                         size_bytes=int(0.99 * _GB), size_checked="2026-11", license="Apache-2.0"),
        RecommendedModel("HuggingFaceTB/SmolLM2-1.7B-Instruct", "SmolLM2 1.7B Instruct",
                         "Better answers and writing than the small ones; fine on a recent laptop CPU, fast on a GPU.",
                         size_bytes=int(3.4 * _GB), size_checked="2026-11", license="Apache-2.0"),
        RecommendedModel("Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5 1.5B Instruct",
                         "A capable multilingual assistant (also code and maths); best with a GPU or a fast CPU.",
                         size_bytes=int(3.1 * _GB), size_checked="2026-11", license="Apache-2.0"),
    )

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """A tiny GPT-2 with random weights and a chat template (about 0.7 MB, a second, offline)."""
        from plugins.text.demo import build_tiny_lm

        build_tiny_lm(dest)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> TextModel:
        """Load a transformers model folder onto ``device`` (see :func:`load_text_model`)."""
        if model_path is None:
            raise ModelNotFoundError("No model was given.", hint="Choose a language model, or 'demo'.")
        return load_text_model(Path(model_path), device, options)

    def handle_size(self, handle: Any) -> int | None:
        return handle.size_bytes()

    # -- panel and reuse ---------------------------------------------------------------------------------------

    def create_panel(self, host: Any) -> Any:
        """The writer's panel: a document editor or a chat, drafts autosaved, presets."""
        from plugins.text.panel import create_panel

        return create_panel(host)

    def params_from_file(self, path: Path) -> TextParams | None:
        """Params from a draft exported as .md (front matter) or .txt (JSON sidecar); None otherwise. Never raises."""
        from plugins.text.drafts import typed_params_from_export

        return typed_params_from_export(TextParams, path)

    def detect_watermark(self, path: Path, metadata: Mapping[str, Any] | None,
                         model_path: Path | None = None) -> WatermarkCheck | None:
        """Look for the mark ``ctx.watermark`` puts in (:mod:`plugins.text.watermark`) in the UTF-8 text at
        ``path``, with the model's tokenizer and config only (no weights). None without ``model_path``: the
        tokens cannot be read back without the model's tokenizer. Never raises."""
        if model_path is None:
            return None
        from plugins.text.watermark import check_file

        return check_file(Path(path), metadata, Path(model_path))

    # -- training ------------------------------------------------------------------------------------------

    def train(self, model_path: Path | None, device: str, kind: str, params: Any,
              ctx: TrainingContext) -> TrainingResult:
        """Train a LoRA adapter on the user's writing (:mod:`plugins.text.training`)."""
        if kind != LORA_TRAINING.id:
            raise ParamError("kind", kind, f"{self.id} trains only {LORA_TRAINING.id!r}")
        return train_lora(model_path, device, params, ctx)

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: TextModel, params: TextParams, ctx: RunContext) -> list[TextOutput]:
        """Write up to ``max_new_tokens`` tokens after the prompt, streaming them; see the module docstring."""
        import torch
        from transformers import StoppingCriteriaList

        from plugins.text.streaming import CANCELLED, EOS, MAX_TOKENS, STOP_SEQUENCE, TextAssembler, TokenRelay, stream

        prompt = build_prompt(handle.tokenizer, params.mode, params.prompt, params.system_prompt,
                              list(params.history))
        ids, dropped = fit_context(prompt.ids, handle.context_length, params.max_new_tokens)
        # the adapter asked for, on; or every adapter off: the base model exactly
        adapter_path = ctx.addon_model(ADAPTER, params.adapter) if params.adapter.strip() else None
        adapter = use_adapter(handle.model, adapter_path, params.adapter.strip())
        if dropped:
            ctx.warn(truncation_notice(len(prompt.ids), dropped, handle.context_length, params.max_new_tokens))
        ctx.raise_if_cancelled()
        tokenizer = handle.tokenizer
        assembler = TextAssembler(lambda token_ids: tokenizer.decode(token_ids, skip_special_tokens=True),
                                  params.stop)
        relay = TokenRelay(assembler, cancelled=lambda: ctx.cancelled)
        input_ids = torch.tensor([ids], device=handle.model.device)
        kwargs = _generate_kwargs(handle, params, input_ids)
        if ctx.watermark:  # transformers' green-list watermark (plugins.text.watermark), recorded in the metadata
            from plugins.text.watermark import config_record, watermarking_config

            kwargs["watermarking_config"] = watermarking_config()

        def run(criterion: TokenRelay) -> None:
            handle.model.generate(**kwargs, stopping_criteria=StoppingCriteriaList([criterion]))

        sampling = params.temperature > 0
        with ctx.hold_global_rng() if sampling else contextlib.nullcontext():
            result = stream(run, relay, on_chunk=ctx.preview,
                            on_token=lambda count: ctx.progress(count, params.max_new_tokens),
                            cancelled=lambda: ctx.cancelled)
        metadata: dict[str, Any] = {"mode": params.mode, "prompt_tokens": len(ids), "new_tokens": result.new_tokens,
                                    "truncated_tokens": dropped, "seed": ctx.seed}
        if adapter is not None:
            metadata["adapter"] = adapter
        if ctx.watermark:
            metadata["watermark"] = config_record(handle.model.device)
        if result.cancelled:
            metadata["stopped_by"] = CANCELLED
            partial = [TextOutput(text=result.delivered, metadata=metadata, partial=True)] if result.delivered else []
            raise JobCancelled(partial=partial)
        if result.stopped_by_sequence:
            metadata["stopped_by"] = STOP_SEQUENCE
        elif result.last_token is not None and result.last_token in handle.eos_ids():
            metadata["stopped_by"] = EOS
        else:
            metadata["stopped_by"] = MAX_TOKENS
        return [TextOutput(text=result.text, metadata=metadata)]


def _generate_kwargs(handle: TextModel, params: TextParams, input_ids: Any) -> dict[str, Any]:
    """``generate``'s arguments: greedy at temperature 0, else sampling with top-p/top-k; the model's own
    generation config (its EOS tokens…) for the rest."""
    import torch

    tokenizer = handle.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(sorted(handle.eos_ids())), None)
    kwargs: dict[str, Any] = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "max_new_tokens": params.max_new_tokens,
        "repetition_penalty": params.repetition_penalty,
        "pad_token_id": pad,
    }
    if params.temperature > 0:
        kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k)
    else:  # greedy: clear the model's own sampling defaults so transformers does not warn about them
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    return kwargs


# ---------------------------------------------------------------------------------------------- loading


def load_text_model(path: Path, device: str, options: LoadOptions) -> TextModel:
    """Load the model folder ``path`` onto ``device``: tokenizer and causal LM, offline.

    ``options``: ``dtype`` (``auto``: bfloat16 on a GPU that supports it, else float16; float32 on the CPU) and
    ``allow_pickle``. Every file that cannot be used raises :class:`ModelFormatError` naming it.
    """
    name = path.name or str(path)  # "/" has no name
    if not path.exists():
        raise ModelNotFoundError(f"No model at {path}.", hint="Choose a model folder, a hub model, or 'demo'.")
    if not path.is_dir():
        raise ModelFormatError(f"{name} is a single file, but a language model is a folder (config.json, "
                               "tokenizer files and weights).",
                               hint="Choose the model's folder, or download the model by its hub name.")
    allow_pickle = bool(getattr(options, "allow_pickle", False))
    # Pipes and devices refused, corrupt safetensors and pickle refused: naming the file. Only a model folder is
    # searched (a few levels down); any other folder fails on its missing config.json below.
    check_model_files(path, allow_pickle=allow_pickle)
    if not (path / "config.json").is_file():
        raise ModelFormatError(f"{name} is not a transformers model folder: it has no config.json.",
                               hint="Choose the folder that holds config.json, or download the model again.")
    if not any((path / file).is_file() for file in TOKENIZER_FILES):
        raise ModelFormatError(f"{name} has no tokenizer (no tokenizer.json, tokenizer.model or vocab file), "
                               "so its text cannot be read or written.",
                               hint="Copy the tokenizer files from the model's original repository into the folder, "
                                    "or download the model again.")
    check_config_files(path)  # config.json & co. must be JSON objects: named here, not blamed on the tokenizer
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = _dtype(torch, options.get("dtype", "auto"), device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:
        raise tokenizer_problem(path) or ModelFormatError(
            f"The tokenizer of {name} could not be loaded: {_first_line(exc)}",
            hint="Download the model again, or copy its tokenizer files into the folder.") from exc
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype,
                                                     use_safetensors=None if allow_pickle else True)
    except MemoryError as exc:
        raise InsufficientMemoryError(f"There is not enough memory to load {path.name}.",
                                      hint="Close other models or programs, or choose a smaller model.") from exc
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ModelFormatError(f"{path.name} is not a language model this generator can run (a causal LM).",
                                   hint="Choose a text-generation model, such as an instruct model.") from exc
        raise ModelFormatError(f"{path.name} could not be loaded: {_first_line(exc)}",
                               hint="Download the model again, or choose another model.") from exc
    except Exception as exc:  # OSError, RuntimeError, KeyError… from transformers or safetensors
        raise ModelFormatError(f"{path.name} could not be loaded: {_first_line(exc)}",
                               hint="Download the model again, or choose another model.") from exc
    model.to(device).eval()
    return TextModel(model=model, tokenizer=tokenizer, device=device, source=path,
                     context_length=context_length_of(model.config, tokenizer))


def context_length_of(config: Any, tokenizer: Any) -> int:
    """How many tokens the model reads, prompt and new tokens together: the smaller of what its config states
    (``max_position_embeddings``, ``n_positions``…) and the tokenizer's ``model_max_length`` when that is a real
    value (transformers puts a huge placeholder there when it is unknown); :data:`DEFAULT_CONTEXT` if neither."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    stated = []
    for name in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length", "max_sequence_length"):
        value = getattr(text_config, name, None)
        if isinstance(value, int) and value > 0:
            stated.append(value)
            break
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        stated.append(limit)
    return min(stated) if stated else DEFAULT_CONTEXT


def _dtype(torch: Any, name: str, device: str) -> Any:
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.startswith("mps") else torch.float32
    return getattr(torch, name)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
