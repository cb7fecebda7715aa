"""``text.llamacpp``: GGUF language models through llama.cpp (llama-cpp-python) — continue a text or chat, streaming.

* **load** takes a ``.gguf`` file (or a folder holding exactly one). Before loading the weights it reads the header
  (:mod:`plugins.gguf.gguf_file`: a corrupt or truncated file is refused naming it), asks llama.cpp to read only
  the vocabulary (an architecture this build does not know is refused naming it) and estimates the memory: the
  file (llama.cpp maps it) plus the KV cache for the context. The context is the file's, halved while the estimate
  does not fit the free memory (never below :data:`MIN_CONTEXT`); if even that does not fit the load is refused
  with the estimate. Then ``Llama(model_path, n_ctx, n_threads, n_gpu_layers)``.
* **generate** builds the prompt — continue: the text as the model's tokenizer reads it; chat: the GGUF's own chat
  template rendered as llama-cpp-python renders it (``Jinja2ChatFormatter``) — drops its start with the same
  notice as ``text.transformers`` when it does not fit the context with the new tokens
  (:func:`plugins.text.prompting.fit_context`), and streams the answer token by token through the same pieces as
  ``text.transformers`` (:mod:`plugins.text.streaming`): each final chunk to ``ctx.preview``, each token to
  ``ctx.progress``; stop sequences end the text and are never streamed; a cancel is checked at every token and
  keeps exactly the tokens so far (llama.cpp computes the next token only when asked for it).

Reproducibility: temperature 0 is greedy; otherwise llama.cpp's sampler is seeded from ``ctx.seed``. Every job
evaluates its whole prompt afresh (no prefix reuse from the previous job): a prefix cached from an earlier job was
computed in other batch sizes, which can change the last bits of the logits, and the same seed must give the same
text whatever ran before.

``llama_cpp`` is imported only inside the methods the worker process calls; nothing here imports torch.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.api import (
    GenerationError,
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
)
from plugins.gguf.params import GGUFParams
from plugins.text.prompting import chat_messages, fit_context, truncation_notice

__all__ = ["LlamaCppTextGenerator", "GGUFModel", "load_gguf_model", "MIN_CONTEXT"]

MIN_CONTEXT = 1024
"""The smallest context the load shrinks to when the file's does not fit the free memory (a file's own smaller
context is kept)."""
MEMORY_SHARE = 0.9
"""The share of the free memory a model may take (the rest is left to everything else)."""
_LLAMA_RANDOM_SEED = 0xFFFFFFFF  # llama.cpp's "pick a random seed": never passed
_GB = 1_000_000_000


@dataclass
class GGUFModel:
    """The handle ``load`` returns: the llama.cpp model, what its header says and how it runs."""

    llama: Any
    info: Any  # plugins.gguf.gguf_file.GGUFInfo
    path: Path
    context_length: int
    """The context the model was loaded with (the file's, or less where memory is short)."""
    threads: int
    gpu_layers: int
    memory_bytes: int
    """The estimate: the file plus the KV cache for :attr:`context_length`."""

    def is_end(self, token: int) -> bool:
        """True for a token that ends generation (EOS, end of turn…: llama.cpp's end-of-generation tokens)."""
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))


class LlamaCppTextGenerator(Generator):
    """Text generation with GGUF models through llama.cpp."""

    id = "text.llamacpp"
    name = "Text (GGUF, llama.cpp)"
    kind = "text"
    version = "0.1.0"
    description = "Continue a text or chat with an assistant, with a quantised GGUF model: fast and light on a CPU."
    Params = GGUFParams
    default_model = "demo"
    devices = ("cpu",)  # GPU offload is the gpu_layers option (llama.cpp's own), not a torch device
    preload_modules = ("llama_cpp",)
    model_file_patterns = ("*.gguf",)  # a model is one .gguf file (for GGUF: pick the quantisation)
    # Sizes: of the .gguf files, written by hand (the hub was not reachable): approximate.
    recommended_models = (
        RecommendedModel("Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
                         "Qwen2.5 0.5B Instruct (Q4_K_M)",
                         "A small multilingual assistant with a long context; very fast on any laptop CPU.",
                         size_bytes=int(0.49 * _GB), size_checked="2026-12", license="Apache-2.0"),
        RecommendedModel("HuggingFaceTB/SmolLM2-360M-Instruct-GGUF/smollm2-360m-instruct-q8_0.gguf",
                         "SmolLM2 360M Instruct (Q8_0)",
                         "A small, fast English assistant for simple answers and rewrites.",
                         size_bytes=int(0.39 * _GB), size_checked="2026-12", license="Apache-2.0"),
        RecommendedModel("bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf",
                         "Llama 3.2 1B Instruct (Q4_K_M)",
                         "Better answers and writing than the small ones, still quick on a laptop CPU.",
                         size_bytes=int(0.81 * _GB), size_checked="2026-12", license="Llama 3.2 Community"),
        RecommendedModel("Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf",
                         "Qwen2.5 1.5B Instruct (Q4_K_M)",
                         "A capable multilingual assistant (also code and maths); fine on a recent laptop CPU.",
                         size_bytes=int(1.12 * _GB), size_checked="2026-12", license="Apache-2.0"),
    )

    # -- models ------------------------------------------------------------------------------------------

    def build_demo_model(self, dest: Path) -> None:
        """A tiny Qwen2 with random weights and a chat template, as one F16 GGUF file (about 240 KB, offline)."""
        from plugins.gguf.demo import build_tiny_gguf

        build_tiny_gguf(dest)

    def load(self, model_path: Path | None, device: str, options: LoadOptions) -> GGUFModel:
        """Load a ``.gguf`` file, after the checks in the module docstring (see :func:`load_gguf_model`)."""
        if model_path is None:
            raise ModelNotFoundError("No model was given.", hint="Choose a GGUF model, or 'demo'.")
        return load_gguf_model(Path(model_path), options)

    def handle_size(self, handle: GGUFModel) -> int | None:
        """The file (llama.cpp maps it) plus the KV cache for the loaded context."""
        return handle.memory_bytes

    def unload(self, handle: GGUFModel) -> None:
        """Free llama.cpp's model and context now (not whenever the garbage collector gets to them)."""
        handle.llama.close()

    def describe_model(self, path: Path) -> dict[str, str]:
        """The header's facts for the Models page: architecture, quantisation, context length. Reads only the
        header (no llama.cpp); ``{}`` for a file that cannot be read."""
        from plugins.gguf.gguf_file import read_header, resolve_gguf

        try:
            info = read_header(resolve_gguf(Path(path)))
        except Exception:  # the Models page shows what it can; loading the model names the problem
            return {}
        facts = {"architecture": info.architecture, "quantisation": info.quantisation}
        if info.context_length:
            facts["context"] = f"{info.context_length} tokens"
        return {k: str(v) for k, v in facts.items() if v}

    # -- panel and reuse ---------------------------------------------------------------------------------------

    def create_panel(self, host: Any) -> Any:
        """The text panel (documents, chat, drafts, presets) with llama.cpp's load options: threads, and GPU
        layers where the installed llama-cpp-python is a GPU build."""
        from plugins.gguf.resources import gpu_build_installed
        from plugins.text.panel import create_panel

        fields = ("threads", "gpu_layers") if gpu_build_installed() else ("threads",)
        return create_panel(host, params_type=GGUFParams, load_fields=fields)

    def params_from_file(self, path: Path) -> GGUFParams | None:
        """Params from a draft exported as .md (front matter) or .txt (JSON sidecar); None otherwise. Never raises."""
        from plugins.text.drafts import typed_params_from_export

        return typed_params_from_export(GGUFParams, path)

    # -- jobs ----------------------------------------------------------------------------------------------

    def generate(self, handle: GGUFModel, params: GGUFParams, ctx: RunContext) -> list[TextOutput]:
        """Write up to ``max_new_tokens`` tokens after the prompt, streaming them; see the module docstring."""
        from plugins.text.streaming import CANCELLED, EOS, MAX_TOKENS, STOP_SEQUENCE, TextAssembler, TokenRelay, stream

        llama = handle.llama
        prompt_ids = _prompt_ids(handle, params)
        ids, dropped = fit_context(prompt_ids, handle.context_length, params.max_new_tokens)
        if dropped:
            ctx.warn(truncation_notice(len(prompt_ids), dropped, handle.context_length, params.max_new_tokens))
        ctx.raise_if_cancelled()
        assembler = TextAssembler(lambda token_ids: llama.detokenize(token_ids).decode("utf-8", errors="replace"),
                                  params.stop)
        relay = TokenRelay(assembler, cancelled=lambda: ctx.cancelled)
        ended: list[int] = []  # the end-of-generation token, once written

        def run(relay: TokenRelay) -> None:
            llama.set_seed(ctx.seed % _LLAMA_RANDOM_SEED)
            llama.reset()  # the whole prompt afresh: the same seed gives the same text, whatever ran before
            tokens = llama.generate(ids, reset=True, **_sampling(params))
            with contextlib.closing(tokens):  # leaving the loop computes nothing more
                for token in tokens:
                    stop = relay.step(token)
                    if handle.is_end(token):
                        ended.append(token)
                    if stop or ended or relay.assembler.token_count >= params.max_new_tokens:
                        return

        result = stream(run, relay, on_chunk=ctx.preview,
                        on_token=lambda count: ctx.progress(count, params.max_new_tokens),
                        cancelled=lambda: ctx.cancelled)
        metadata: dict[str, Any] = {"mode": params.mode, "prompt_tokens": len(ids), "new_tokens": result.new_tokens,
                                    "truncated_tokens": dropped, "seed": ctx.seed}
        if result.cancelled:
            metadata["stopped_by"] = CANCELLED
            partial = [TextOutput(text=result.delivered, metadata=metadata, partial=True)] if result.delivered else []
            raise JobCancelled(partial=partial)
        if result.stopped_by_sequence:
            metadata["stopped_by"] = STOP_SEQUENCE
        elif ended:
            metadata["stopped_by"] = EOS
        else:
            metadata["stopped_by"] = MAX_TOKENS
        return [TextOutput(text=result.text, metadata=metadata)]


def _sampling(params: GGUFParams) -> dict[str, Any]:
    """``Llama.generate``'s sampling arguments: greedy at temperature 0 (the repetition penalty still applies, as
    in transformers); else top-k (0: no limit), top-p and the temperature, with llama.cpp's other filters off."""
    return {"temp": params.temperature, "top_k": params.top_k, "top_p": params.top_p, "min_p": 0.0,
            "typical_p": 1.0, "repeat_penalty": params.repetition_penalty}


def _prompt_ids(handle: GGUFModel, params: GGUFParams) -> list[int]:
    """The prompt's token ids: the text as the model reads it (with its BOS if the file asks for one), or the chat
    rendered by the GGUF's chat template."""
    llama = handle.llama
    if params.mode == "chat":
        text = _chat_text(handle, chat_messages(params.system_prompt, list(params.history), params.prompt))
        return llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)  # the template wrote them
    ids = llama.tokenize(params.prompt.encode("utf-8"), add_bos=True) if params.prompt else []
    if not ids:  # nothing to continue from: start a new document
        start = next((t for t in (llama.token_bos(), llama.token_eos()) if t >= 0), None)
        if start is None:
            raise ParamError("prompt", params.prompt, "this model needs some text to continue",
                             hint="Type the beginning of the text.")
        ids = [start]
    return list(ids)


def _chat_text(handle: GGUFModel, messages: list[dict[str, str]]) -> str:
    """The chat rendered by the GGUF's own template, as llama-cpp-python's chat handler renders it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = handle.info.chat_template
    if not template:
        raise ParamError("mode", "chat", "this model has no chat template, so it cannot chat",
                         hint="Use continue mode with this model (it writes on from your text), or choose an "
                              "instruct or chat model.")
    llama = handle.llama
    try:
        formatter = Jinja2ChatFormatter(template=template, eos_token=_token_text(llama, llama.token_eos()),
                                        bos_token=_token_text(llama, llama.token_bos()), add_generation_prompt=True)
        return formatter(messages=messages).prompt
    except Exception as exc:  # a template may refuse (raise_exception), e.g. a model that takes no system prompt
        raise GenerationError(f"This model's chat template refused the conversation: {exc}",
                              hint="Some models take no system prompt: leave it empty and try again.") from exc


def _token_text(llama: Any, token: int) -> str:
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace") if token >= 0 else ""


# ---------------------------------------------------------------------------------------------- loading


def load_gguf_model(path: Path, options: LoadOptions) -> GGUFModel:
    """Check and load the GGUF file at ``path`` (or the one ``.gguf`` in the folder ``path``): the header, the
    architecture, the memory (see the module docstring); ``options``: ``threads`` (0: automatic) and
    ``gpu_layers`` (0: none, -1: all; ignored by a build without GPU offload)."""
    from plugins.gguf.gguf_file import read_header, resolve_gguf
    from plugins.gguf.resources import automatic_threads

    if not path.exists():
        raise ModelNotFoundError(f"No model at {path}.", hint="Choose a .gguf file, a hub model, or 'demo'.")
    file = resolve_gguf(path)
    info = read_header(file)  # ModelFormatError naming the file
    _check_architecture(file, info)  # an architecture llama.cpp cannot run: refused whatever the memory
    context, memory = _context_that_fits(file, info)
    import llama_cpp

    threads = int(options.get("threads", 0)) or automatic_threads()
    gpu_layers = int(options.get("gpu_layers", 0)) if llama_cpp.llama_supports_gpu_offload() else 0
    llama = _open(file, info, vocab_only=False, n_ctx=context, n_threads=threads, n_threads_batch=threads,
                  n_gpu_layers=gpu_layers)
    return GGUFModel(llama=llama, info=info, path=file, context_length=min(context, llama.n_ctx()), threads=threads,
                     gpu_layers=gpu_layers, memory_bytes=memory)


def _context_that_fits(file: Path, info: Any) -> tuple[int, int]:
    """The context to load with and the memory estimate for it: the file's context, halved while the file and its
    KV cache do not fit :data:`MEMORY_SHARE` of the free memory; refused when even the smallest does not."""
    from plugins.gguf.gguf_file import kv_cache_bytes
    from plugins.gguf.resources import available_memory

    wanted = int(info.context_length or 0) or 4096  # a file that states none: llama.cpp's usual default
    smallest = min(wanted, MIN_CONTEXT)
    free = available_memory()
    context = wanted
    if free is not None:
        budget = int(free * MEMORY_SHARE)
        while context > smallest and info.file_size + kv_cache_bytes(info, context) > budget:
            context = max(smallest, context // 2)
    memory = info.file_size + kv_cache_bytes(info, context)
    if free is not None and memory > int(free * MEMORY_SHARE):
        raise InsufficientMemoryError(
            f"{file.name} needs about {_size(memory)} of memory ({_size(info.file_size)} for the model and "
            f"{_size(memory - info.file_size)} for a context of {context:,} tokens), but only {_size(free)} is free.",
            hint="Close other models or programs to free memory, or choose a smaller quantisation of the model "
                 "(such as Q4_K_M) or a smaller model.")
    return context, memory


def _check_architecture(file: Path, info: Any) -> None:
    """Ask llama.cpp to read only the vocabulary: it refuses an architecture it does not know (before any weights
    are read). Raises ModelFormatError naming the architecture."""
    _open(file, info, vocab_only=True).close()


def _open(file: Path, info: Any, *, vocab_only: bool, **kwargs: Any) -> Any:
    """``llama_cpp.Llama`` on ``file``, quiet; llama.cpp's refusal becomes a ModelFormatError with its reason."""
    import llama_cpp

    from plugins.gguf.llama_log import captured_log, load_error

    log: list[str] = []
    try:
        with captured_log() as log:
            return llama_cpp.Llama(model_path=str(file), vocab_only=vocab_only, verbose=False, **kwargs)
    except MemoryError as exc:
        raise InsufficientMemoryError(f"There is not enough memory to load {file.name}.",
                                      hint="Close other models or programs, or choose a smaller model.") from exc
    except (ValueError, RuntimeError, OSError) as exc:
        reason = load_error(log)
        version = getattr(llama_cpp, "__version__", "?")
        if reason and reason.startswith("unknown model architecture"):
            raise ModelFormatError(
                f"{file.name} is a model of the architecture {info.architecture!r}, which this llama.cpp "
                f"(llama-cpp-python {version}) cannot run.",
                hint="Choose a GGUF model of an architecture llama.cpp supports (Llama, Qwen, Gemma, Phi, Mistral…), "
                     "or update llama-cpp-python.") from exc
        raise ModelFormatError(f"llama.cpp could not load {file.name}: {reason or exc}",
                               hint="Download the model again, or choose another GGUF file.") from exc


def _size(n: float) -> str:
    """Bytes for a person, as the host writes them (``234.4 KB``, ``1.5 GB``: units of 1024)."""
    for unit in ("B", "KB", "MB"):
        if abs(n) < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
