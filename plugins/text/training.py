"""Text LoRA training (``text.transformers`` trains ``lora``): a LoRA adapter learned from your own writing.

**Data** (:func:`load_dataset`): ``TextLoraParams.texts`` names files or folders: ``.txt`` and ``.md`` files (an
exported draft's front matter is left out), the text panel's drafts (its ``drafts`` folder of ``<id>.json`` files,
or single draft files: a document trains as text, a chat as a chat example), and ``.jsonl`` files of chat examples,
one ``{"messages": [{"role": "user", "content": ...}, ...]}`` a line, formatted with the model's chat template as
chat mode formats a conversation (:mod:`plugins.text.prompting`). Every text is tokenised, ended with the EOS token,
and all are packed into blocks of ``block_size`` tokens.

**Loop** (a plain loop, the shape :class:`~desktop.api.training.TrainingContext` documents): the base model is
loaded by the generator's own :func:`~plugins.text.generator.load_text_model` (its own copy, freed at the end),
peft puts LoRA layers on the attention projections peft knows for the architecture (``c_attn`` for GPT-2,
``q_proj``/``v_proj`` for Llama, Qwen…; all linear layers for an architecture peft has no default for), and AdamW
trains those alone. The first steps are the warm-up the fit check measures. The loop draws from no global random
generator: dropout is off (the base model stays in eval mode, ``lora_dropout=0``), the LoRA weights are initialised
while holding the global generators seeded with the job's seed, and the data order is a function of the seed and
the position in the data alone (a fresh permutation each epoch) — so a checkpoint (LoRA weights as safetensors,
optimiser and grad-scaler state, step and data position) resumes to exactly the run that was not interrupted.

**Result**: ``work_dir/result``, peft's adapter folder (``adapter_config.json``, ``adapter_model.safetensors``),
which the host imports into the ``adapter`` add-on list; the text generator applies it with ``adapter=NAME``.

torch, transformers and peft are imported only inside the functions the worker calls.
"""

from __future__ import annotations

import json
import re
import resource
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import (
    LoadOptions,
    ModelFormatError,
    ModelNotFoundError,
    ParamError,
    TrainingContext,
    TrainingKind,
    TrainingResult,
    file_manifest,
    param,
    resident_memory,
    training_files,
)

__all__ = ["LORA_TRAINING", "TextLoraParams", "train_lora", "load_dataset", "Dataset", "PRECISIONS"]

PRECISIONS = ("no", "fp16", "bf16")
TEXT_SUFFIXES = (".txt", ".md")
SUFFIXES = (*TEXT_SUFFIXES, ".jsonl", ".json")
CHAT_ROLES = ("system", "user", "assistant")
SAMPLE_TOKENS = 48
"""How many tokens a sample continues ``sample_prompt`` with."""
WARMUP_STEPS = 2
"""Steps measured before the fit check (they are the run's first real steps, reported after it)."""
CLIP_NORM = 1.0

_FRONT_MATTER = re.compile(r"\A---\r?\n.*?\r?\n---\r?\n", re.DOTALL)


@dataclass(frozen=True)
class TextLoraParams:
    """What ``studiolo train text.transformers`` and the training window ask for."""

    texts: list[str] = param(default_factory=list, label="Texts",
                             help="Files or folders to learn from: .txt and .md files, the text panel's drafts "
                                  "(its drafts folder or draft files), .jsonl files of chat examples "
                                  '({"messages": [{"role": "user", "content": "..."}, ...]} a line).')
    block_size: int = param(256, min=8, max=8192,
                            help="Tokens per training example: the texts are joined and cut into blocks this long "
                                 "(at most the model's context length).")
    rank: int = param(8, min=1, max=256, help="The LoRA's rank: larger learns more and makes a larger adapter.")
    steps: int = param(200, min=1, max=1_000_000, help="Optimisation steps to train.")
    learning_rate: float = param(2e-4, min=1e-7, max=1.0, step=1e-5, help="AdamW's learning rate.")
    batch_size: int = param(1, min=1, max=256, help="Blocks per forward pass.")
    gradient_accumulation: int = param(1, min=1, max=256,
                                       help="Forward passes whose gradients add up to one step (a larger "
                                            "effective batch without the memory).")
    mixed_precision: str = param("no", choices=PRECISIONS,
                                 help="no: float32 throughout; fp16 (GPU) or bf16: the frozen model in half "
                                      "precision, the LoRA in float32 — less memory, faster on a GPU.")
    checkpoint_every: int = param(50, min=0, max=1_000_000,
                                  help="Write a checkpoint every this many steps (0: only at the end and on pause).")
    sample_every: int = param(0, min=0, max=1_000_000,
                              help="Every this many steps, continue the sample prompt (greedy) and show it "
                                   "(0: never).")
    sample_prompt: str = param("", multiline=True,
                               help="The text the samples continue (empty: the first words of the first text).")


LORA_TRAINING = TrainingKind(
    "lora", "LoRA from your writing", TextLoraParams, result_kind="adapter",
    description="Train a LoRA adapter on your drafts, .txt/.md files or chat examples, so the language model "
                "writes more like them; use it with the text panel's Adapter choice.")


# ----------------------------------------------------------------------------------------------------- data


@dataclass
class Dataset:
    """The training data: the files read, the token ids of each text (EOS-ended), and what they were."""

    files: list[Path]
    documents: list[list[int]] = field(default_factory=list)
    texts: int = 0
    chat_examples: int = 0
    first_text: str = ""

    @property
    def tokens(self) -> int:
        return sum(len(d) for d in self.documents)


def load_dataset(sources: list[str], tokenizer: Any, ctx: TrainingContext | None = None) -> Dataset:
    """Read ``sources`` into token ids (see the module docstring). Raises :class:`ParamError` on ``texts`` for a
    missing, empty or unreadable source, a ``.jsonl`` line that is not a chat example (naming the line), chat
    examples for a model without a chat template, and when nothing is left to learn from."""
    files = training_files(sources, SUFFIXES, param_name="texts")
    explicit = {Path(s).expanduser() for s in sources}
    dataset = Dataset(files=[])
    skipped = 0
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            examples = _read_jsonl(path)
            for messages in examples:
                dataset.documents.append(_chat_ids(tokenizer, messages, path))
            dataset.chat_examples += len(examples)
        elif suffix == ".json":
            draft = _read_draft(path)
            if draft is None:
                if path in explicit:
                    raise ParamError("texts", str(path), "is neither a text draft nor a .txt/.md/.jsonl file",
                                     hint="Give the drafts folder, .txt or .md files, or a .jsonl of chat examples.")
                skipped += 1  # an exported draft's sidecar, or another JSON file in the folder
                continue
            if draft.kind == "chat":
                messages = ([{"role": "system", "content": draft.system_prompt}] if draft.system_prompt.strip()
                            else []) + [dict(m) for m in draft.messages]
                if not any(m["role"] == "assistant" and m["content"].strip() for m in messages):
                    continue
                dataset.documents.append(_chat_ids(tokenizer, messages, path))
                dataset.chat_examples += 1
            else:
                if not draft.text.strip():
                    continue
                dataset.documents.append(_text_ids(tokenizer, draft.text))
                dataset.texts += 1
                dataset.first_text = dataset.first_text or draft.text
        else:
            text = _read_text(path)
            if suffix == ".md":
                text = _FRONT_MATTER.sub("", text, count=1)
            if not text.strip():
                continue
            dataset.documents.append(_text_ids(tokenizer, text))
            dataset.texts += 1
            dataset.first_text = dataset.first_text or text
        dataset.files.append(path)
    if skipped and ctx is not None:
        ctx.warn(f"{skipped} .json file(s) that are not text drafts were left out (exported drafts' sidecars and "
                 "the like).")
    if not dataset.documents:
        raise ParamError("texts", ", ".join(sources), "has no text to train on (the files found are empty)",
                         hint="Give files or drafts with some writing in them.")
    return dataset


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParamError("texts", str(path), f"is not UTF-8 text (byte {exc.start})",
                         hint="Save the file as UTF-8, or leave it out.") from exc
    except OSError as exc:
        raise ParamError("texts", str(path), f"cannot be read: {exc.strerror or exc}") from exc


def _read_jsonl(path: Path) -> list[list[dict[str, str]]]:
    examples = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        messages = data.get("messages") if isinstance(data, dict) else None
        if not (isinstance(messages, list) and messages and all(
                isinstance(m, dict) and m.get("role") in CHAT_ROLES and isinstance(m.get("content"), str)
                for m in messages)):
            raise ParamError("texts", f"{path}:{number}",
                             f"line {number} of {path.name} is not a chat example",
                             hint='Each line must be {"messages": [{"role": "user", "content": "..."}, '
                                  '{"role": "assistant", "content": "..."}]} (roles: system, user, assistant).')
        examples.append([{"role": m["role"], "content": m["content"]} for m in messages])
    return examples


def _read_draft(path: Path) -> Any:
    """The draft in ``path``, or None when it is not a draft."""
    from plugins.text.drafts import Draft, DraftError

    try:
        return Draft.from_json(json.loads(_read_text(path)))
    except (ValueError, DraftError):
        return None


def _text_ids(tokenizer: Any, text: str) -> list[int]:
    ids = list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def _chat_ids(tokenizer: Any, messages: list[dict[str, str]], path: Path) -> list[int]:
    """A chat example as chat mode writes a conversation: the model's chat template, its own special tokens."""
    if not getattr(tokenizer, "chat_template", None):
        raise ParamError("texts", str(path), "holds chat examples, but this model has no chat template to write "
                                             "them with",
                         hint="Train a chat (instruct) model on chat examples, or give this model .txt/.md files.")
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False)
    except Exception as exc:  # a template may refuse (raise_exception): e.g. no system role
        raise ParamError("texts", str(path), f"the model's chat template refused an example: {exc}",
                         hint="Some models take no system message: leave it out of the examples.") from exc
    return list(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def pack(documents: list[list[int]], block_size: int) -> list[list[int]]:
    """All documents joined and cut into blocks of ``block_size`` tokens (the last, shorter piece left out)."""
    ids = [token for document in documents for token in document]
    return [ids[i:i + block_size] for i in range(0, len(ids) - block_size + 1, block_size)]


def batch_indices(position: int, count: int, n: int, seed: int) -> list[int]:
    """The ``count`` block indexes that come at ``position`` in the data order: epoch after epoch of ``n``
    blocks, each epoch a permutation drawn from a generator seeded with ``seed`` and the epoch — so the order at a
    position never depends on what ran before (a resume starts at its position)."""
    import torch

    out: list[int] = []
    perms: dict[int, list[int]] = {}
    for k in range(position, position + count):
        epoch, index = divmod(k, n)
        if epoch not in perms:
            generator = torch.Generator().manual_seed((seed * 1_000_003 + epoch) % (2 ** 63))
            perms[epoch] = torch.randperm(n, generator=generator).tolist()
        out.append(perms[epoch][index])
    return out


# ----------------------------------------------------------------------------------------------------- model


def _precision(params: TextLoraParams, device: str) -> tuple[str, Any]:
    """The base model's dtype name and the autocast dtype (None: no autocast)."""
    import torch

    if params.mixed_precision == "no":
        return "float32", None
    if params.mixed_precision == "fp16":
        if not device.startswith("cuda"):
            raise ParamError("mixed_precision", "fp16", "fp16 training needs a CUDA GPU",
                             hint="Use bf16 or no on this device.")
        return "float16", torch.float16
    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ParamError("mixed_precision", "bf16", f"{device} does not support bfloat16",
                         hint="Use fp16 on this GPU.")
    return "bfloat16", torch.bfloat16


def _lora_config(model: Any, rank: int) -> tuple[Any, Any]:
    """peft's LoraConfig for ``model``: peft's own target modules for its architecture, else all its linear
    layers; ModelFormatError when peft can put a LoRA on none of them."""
    from peft import LoraConfig
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    model_type = getattr(model.config, "model_type", "")
    targets: Any = None if model_type in DEFAULTS else "all-linear"
    config = LoraConfig(task_type="CAUSAL_LM", r=rank, lora_alpha=rank, lora_dropout=0.0, target_modules=targets)
    return config, targets


def _peft_model(model: Any, config: Any, ctx: TrainingContext) -> Any:
    from peft import get_peft_model

    arch = _architecture(model)
    try:
        with ctx.hold_global_rng(), warnings.catch_warnings():  # the LoRA's random start: the job's seed alone
            # GPT-2's Conv1D layers: peft switches fan_in_fan_out on itself and says so; peft's own deprecation
            warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(model, config)
    except (ValueError, TypeError, NotImplementedError, KeyError) as exc:
        raise ModelFormatError(f"A LoRA cannot be trained on {arch}: peft finds no layers to adapt in it "
                               f"({_first_line(exc)})",
                               hint="Choose a transformers causal language model with linear attention layers "
                                    "(GPT-2, Llama, Qwen, SmolLM, Mistral…).") from exc


def _architecture(model: Any) -> str:
    architectures = getattr(model.config, "architectures", None) or []
    return architectures[0] if architectures else type(model).__name__


def _rss() -> int:
    """This process's resident memory now, in bytes (its peak so far where /proc is not there)."""
    now = resident_memory()
    return now if now is not None else _peak_rss()


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


# ----------------------------------------------------------------------------------------------------- train


def train_lora(model_path: Path | None, device: str, params: TextLoraParams, ctx: TrainingContext) -> TrainingResult:
    """Train a LoRA of the model at ``model_path`` on ``params.texts``; see the module docstring."""
    import torch

    from plugins.text.generator import load_text_model

    if model_path is None:
        raise ModelNotFoundError("No base model was given.", hint="Choose the language model to train, or 'demo'.")
    dtype_name, autocast_dtype = _precision(params, device)
    rss_before = _rss()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(torch.device(device))
    handle = load_text_model(Path(model_path), device, LoadOptions({"dtype": dtype_name}))
    model = handle.model
    try:
        dataset = load_dataset(list(params.texts), handle.tokenizer, ctx)
        block_size = params.block_size
        if block_size > handle.context_length:
            ctx.warn(f"block_size {block_size} is longer than this model reads; {handle.context_length} tokens used.")
            block_size = handle.context_length
        blocks = pack(dataset.documents, block_size)
        if not blocks:
            raise ParamError("texts", ", ".join(params.texts),
                             f"holds {dataset.tokens} tokens, fewer than one block of {block_size}",
                             hint=f"Give more text, or set block_size to {max(8, dataset.tokens // 2)} or less.")
        config, targets = _lora_config(model, params.rank)
        model = _peft_model(model, config, ctx)
        model.eval()  # no dropout: see the module docstring
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=params.learning_rate)
        scaler = torch.amp.GradScaler("cuda") if autocast_dtype == torch.float16 else None
        data = torch.tensor(blocks, dtype=torch.long)
        per_step = params.batch_size * params.gradient_accumulation
        signature = _signature(params, block_size, len(blocks))

        start = 0
        if ctx.resume_from is not None:
            start, folder = ctx.resume_from
            _load_checkpoint(folder, model, optimizer, scaler, signature, device)

        def one_step(step: int) -> float:
            position = (step - 1) * per_step
            order = batch_indices(position, per_step, len(blocks), ctx.seed)
            total = 0.0
            for micro in range(params.gradient_accumulation):
                rows = order[micro * params.batch_size:(micro + 1) * params.batch_size]
                batch = data[rows].to(device)
                with torch.autocast(device_type=device.split(":")[0], dtype=autocast_dtype,
                                    enabled=autocast_dtype is not None):
                    loss = model(input_ids=batch, labels=batch).loss / params.gradient_accumulation
                if scaler is not None:
                    scaler.scale(loss).backward()
                else:
                    loss.backward()
                total += float(loss.detach())
            if scaler is not None:
                scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(trainable, CLIP_NORM)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return total

        def finish(step: int, loss: float) -> None:
            ctx.step_done(step, params.steps, loss)
            if params.sample_every and (step % params.sample_every == 0 or step == params.steps):
                _sample(model, handle, params.sample_prompt or _opening(dataset.first_text), step, ctx)
            if ctx.checkpoint_due(step, params.checkpoint_every, params.steps):
                ctx.save_checkpoint(step, lambda folder: _save_checkpoint(
                    folder, model, optimizer, scaler, step, step * per_step, ctx.seed, signature))
            ctx.raise_if_stopping()

        # warm-up: the first steps of this run (real ones), measured, then the fit check, then reported
        warmup = min(WARMUP_STEPS, params.steps - start)
        peak_rss_before = _peak_rss()
        done: list[tuple[int, float]] = []
        times = []
        for step in range(start + 1, start + warmup + 1):
            ctx.raise_if_cancelled()
            began = time.perf_counter()
            done.append((step, one_step(step)))
            if device.startswith("cuda"):
                torch.cuda.synchronize(torch.device(device))
            times.append(time.perf_counter() - began)
        if warmup:
            if device.startswith("cuda"):
                peak = int(torch.cuda.max_memory_allocated(torch.device(device)))
            else:  # the process's growth since before the model was loaded (its peak, when that grew)
                peak = max(_rss(), _peak_rss() if _peak_rss() > peak_rss_before else 0) - rss_before
            ctx.check_fit(peak_bytes=max(peak, 0), seconds_per_step=min(times))
        for step, loss in done:
            finish(step, loss)
        for step in range(start + warmup + 1, params.steps + 1):
            finish(step, one_step(step))

        result = ctx.work_dir / "result"
        model.save_pretrained(str(result))
        weights = result / "adapter_model.safetensors"
        metadata = {
            "base_architecture": _architecture(model.get_base_model()),
            "model_type": getattr(model.config, "model_type", None),
            "base_model": Path(model_path).name,
            "target_modules": sorted(config.target_modules) if not isinstance(config.target_modules, str)
            else config.target_modules,
            "rank": params.rank, "block_size": block_size, "blocks": len(blocks), "tokens": dataset.tokens,
            "texts": dataset.texts, "chat_examples": dataset.chat_examples, "steps": params.steps,
            "learning_rate": params.learning_rate, "mixed_precision": params.mixed_precision,
            "adapter_sha256": _sha256(weights),
        }
        if targets == "all-linear":
            metadata["note"] = "peft has no default layers for this architecture: every linear layer was adapted"
        return TrainingResult(path=result, metadata=metadata, dataset=file_manifest(dataset.files))
    finally:  # the trainer's own copy of the model: let it go now, not when the worker next collects
        model = handle = None
        import gc

        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()


def _signature(params: TextLoraParams, block_size: int, blocks: int) -> dict[str, Any]:
    """What a checkpoint must have been made with for a resume to continue the same run."""
    kept = ("rank", "batch_size", "gradient_accumulation", "mixed_precision", "learning_rate")
    values = {k: v for k, v in asdict(params).items() if k in kept}
    return {**values, "block_size": block_size, "blocks": blocks}


def _save_checkpoint(folder: Path, model: Any, optimizer: Any, scaler: Any, step: int, position: int, seed: int,
                     signature: dict[str, Any]) -> None:
    import torch
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    weights = {k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(model).items()}
    save_file(weights, str(folder / "adapter_model.safetensors"))
    state = {"optimizer": optimizer.state_dict()}
    if scaler is not None:
        state["scaler"] = scaler.state_dict()
    torch.save(state, folder / "optimizer.pt")
    # no global RNG is drawn from in the loop: the data order's seed and position are its whole random state
    (folder / "state.json").write_text(json.dumps({"step": step, "position": position, "data_order_seed": seed,
                                                   "signature": signature}), encoding="utf-8")


def _load_checkpoint(folder: Path, model: Any, optimizer: Any, scaler: Any, signature: dict[str, Any],
                     device: str) -> None:
    import torch
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        weights = load_file(str(folder / "adapter_model.safetensors"), device=device)
        saved = torch.load(folder / "optimizer.pt", map_location=device, weights_only=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"The checkpoint {folder.name} cannot be read: {_first_line(exc)}",
                               hint="Start the training again without resuming.") from exc
    if state.get("signature") != signature:
        raise ParamError("texts", folder.name, "this run's checkpoint was made with other settings or other data "
                                              f"({state.get('signature')}); it cannot be resumed with these",
                         hint="Resume with the settings and texts the run started with, or start a new run.")
    set_peft_model_state_dict(model, weights)
    optimizer.load_state_dict(saved["optimizer"])
    if scaler is not None and "scaler" in saved:
        scaler.load_state_dict(saved["scaler"])


def _opening(text: str) -> str:
    words = text.split()
    return " ".join(words[:8])


def _sample(model: Any, handle: Any, prompt: str, step: int, ctx: TrainingContext) -> None:
    """Continue ``prompt`` greedily with the LoRA as trained so far; shown with ``ctx.preview`` and kept in
    ``work_dir/samples/step-NNNNNN.txt``."""
    import torch

    tokenizer = handle.tokenizer
    ids = list(tokenizer(prompt, verbose=False)["input_ids"]) or [tokenizer.eos_token_id or 0]
    ids = ids[-(handle.context_length - SAMPLE_TOKENS):]
    input_ids = torch.tensor([ids], device=model.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                             max_new_tokens=SAMPLE_TOKENS, pad_token_id=pad, temperature=None, top_p=None,
                             top_k=None)
    text = prompt + tokenizer.decode(out[0, len(ids):].tolist(), skip_special_tokens=True)
    folder = ctx.work_dir / "samples"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"step-{step:06d}.txt").write_text(text, encoding="utf-8")
    except OSError as exc:
        ctx.warn(f"The sample of step {step} could not be kept: {exc.strerror or exc}")
    ctx.preview(text)


def _sha256(path: Path) -> str | None:
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
