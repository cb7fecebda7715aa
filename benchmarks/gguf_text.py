"""GGUF text models through llama.cpp (``text.llamacpp``): the headline against transformers, and the engine's cost.

1. Headline: a model of Qwen2.5-0.5B-Instruct's exact shape (24 layers, 896 wide, 14 heads, 2 KV heads, 4864 MLP,
   151,936 tokens, tied embeddings; random weights — speed does not depend on their values) is built with
   transformers, saved, converted to GGUF F16 by ``plugins.gguf.convert`` and quantised to Q8_0, Q4_K_M and Q4_0 by
   llama.cpp's own quantizer. Each variant then writes ``--tokens`` tokens greedily after a 16-token prompt, in a
   fresh process of its own (so its peak RSS is its own), ``--threads`` threads: transformers fp32 (``generate``),
   and llama-cpp-python on each GGUF file. Tokens per second (median and spread over ``--runs``, after a warm-up)
   and peak RSS; goal: Q4 ≥ 5× transformers fp32 on 2 cores.
2. Engine: the Q4_K_M file through Studiolo's engine (``text.llamacpp`` in its worker process: the prompt, the
   tokens streamed back as previews, the output saved nowhere) against llama-cpp-python called directly in this
   process, alternated, the same prompt, greedy, the same number of tokens: ratio of the median tokens per second
   (goal ≥ 0.97: the engine adds no measurable cost).

    .venv/bin/python -m benchmarks.gguf_text [--runs 3] [--tokens 128] [--threads 2] [--sections headline,engine]
        [--kinds F16,Q8_0,Q4_K_M,Q4_0] [--small]

``--small`` uses a 4-layer, 256-wide model of the same vocabulary (a quick check of the script, not a result).
The default run takes about 10 minutes on two cores and ~4 GB of disk in a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import save_results, summary

ROOT = Path(__file__).resolve().parent.parent
QWEN25_05B = {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14,
              "num_key_value_heads": 2, "vocab_size": 151936, "max_position_embeddings": 32768,
              "tie_word_embeddings": True, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6}
SMALL = {**QWEN25_05B, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4, "num_attention_heads": 4,
         "num_key_value_heads": 2}
PROMPT_IDS = [785, 14796, 1033, 11, 264, 5020, 23281, 389, 279, 17233, 13, 576, 3100, 11052, 389, 279]
PROMPT_TEXT = "The boats went out in the morning and the sea was grey. She wrote a line, then another line, and"
N_CTX = 512
Q4_GOAL, ENGINE_GOAL = 5.0, 0.97
QUIET = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sections", default="headline,engine")
    parser.add_argument("--kinds", default="F16,Q8_0,Q4_K_M,Q4_0")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--measure", nargs=2, metavar=("ENGINE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.update(QUIET)
    if args.measure:  # a child process: one variant, its numbers as JSON on stdout
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args)))
        return
    sections = args.sections.split(",")
    results: dict[str, Any] = {"tokens": args.tokens, "threads": args.threads, "runs": args.runs,
                               "shape": "small" if args.small else "Qwen2.5-0.5B"}
    with tempfile.TemporaryDirectory(prefix="studiolo-gguf-bench-") as tmp:
        files = build(Path(tmp), args)
        if "headline" in sections:
            results["headline"] = headline(files, args)
        if "engine" in sections:
            os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
            results["engine"] = engine_vs_direct(files["Q4_K_M"], args)
    print(json.dumps(results, indent=2))
    save_results("gguf_text" + ("_small" if args.small else ""), results)


# -- the model files ---------------------------------------------------------------------------------------------


def build(folder: Path, args: argparse.Namespace) -> dict[str, Path]:
    """The transformers folder (``hf``) and its GGUF files, F16 and each quantisation asked for (Q4_K_M always)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from plugins.gguf.convert import convert_transformers_folder, quantize
    from plugins.text.demo import _tokenizer  # the transformers wrapper: it has save_pretrained

    shape = SMALL if args.small else QWEN25_05B
    started = time.perf_counter()
    config = Qwen2Config(**shape, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).eval()  # random init (std 0.02): speed does not depend on the values
    hf = folder / "hf"
    model.save_pretrained(str(hf))
    _tokenizer().save_pretrained(str(hf))  # 320 tokens; the rest of the vocabulary is padding in the GGUF
    del model
    files = {"hf": hf, "F16": convert_transformers_folder(hf, folder / "model-F16.gguf", "f16")}
    for kind in sorted(set(args.kinds.split(",")) | {"Q4_K_M"}):
        if kind != "F16":
            files[kind] = quantize(files["F16"], folder / f"model-{kind}.gguf", kind, threads=args.threads)
    print(f"built the models in {time.perf_counter() - started:.0f} s: "
          + ", ".join(f"{k} {p.stat().st_size / 1e6:.0f} MB" for k, p in files.items() if p.is_file()), file=sys.stderr)
    return files


# -- 1. the headline: each variant in a process of its own ---------------------------------------------------------


def headline(files: dict[str, Path], args: argparse.Namespace) -> dict[str, Any]:
    variants = [("transformers fp32", "transformers", files["hf"])]
    variants += [(f"llama.cpp {kind}", "llama", files[kind]) for kind in args.kinds.split(",")]
    rows: dict[str, Any] = {}
    for name, engine, path in variants:
        command = [sys.executable, "-m", "benchmarks.gguf_text", "--measure", engine, str(path),
                   "--runs", str(args.runs), "--tokens", str(args.tokens), "--threads", str(args.threads)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["tokens_per_s"] = summary(row.pop("rates"))
        row["file_mb"] = round(path.stat().st_size / 1e6) if path.is_file() else None
        rows[name] = row
        print(f"{name:<22} {row['tokens_per_s']['median']:7.1f} tokens/s (IQR {row['tokens_per_s']['q1']:.1f}–"
              f"{row['tokens_per_s']['q3']:.1f})   peak RSS {row['peak_rss_mb']:6.0f} MB", file=sys.stderr)
    base = rows["transformers fp32"]["tokens_per_s"]["median"]
    for row in rows.values():
        row["speed_vs_transformers_fp32"] = round(row["tokens_per_s"]["median"] / base, 2)
    q4 = max((row["speed_vs_transformers_fp32"] for name, row in rows.items() if "Q4" in name), default=None)
    return {"variants": rows, "q4_speed_vs_transformers_fp32": q4, "goal": Q4_GOAL,
            "met": q4 is not None and q4 >= Q4_GOAL}


def measure(engine: str, path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Tokens per second of ``args.runs`` greedy generations of ``args.tokens`` tokens (after a warm-up)."""
    write = _transformers_writer(path, args.threads) if engine == "transformers" else _llama_writer(path, args.threads)
    write(8)  # warm-up: first-call allocations, caches
    rates = []
    for _ in range(args.runs):
        start = time.perf_counter()
        write(args.tokens)
        rates.append(args.tokens / (time.perf_counter() - start))
    return {"rates": rates, "peak_rss_mb": _peak_rss_kb() / 1024}


def _peak_rss_kb() -> int:
    """This process's peak resident memory: VmHWM (getrusage's ru_maxrss survives exec: it would report the
    parent's peak, which built the models)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _transformers_writer(folder: Path, threads: int):
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(threads)
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32, local_files_only=True).eval()
    prompt = torch.tensor([PROMPT_IDS])

    def write(tokens: int) -> None:
        with torch.inference_mode():
            model.generate(prompt, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False, pad_token_id=0)

    return write


def _llama_writer(path: Path, threads: int):
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False)

    def write(tokens: int) -> None:
        llm.reset()
        for written, _token in enumerate(llm.generate(PROMPT_IDS, temp=0.0, top_k=1, reset=True), start=1):
            if written >= tokens:  # the end-of-text token does not stop it: every variant writes as many
                break

    return write


# -- 2. the engine against llama-cpp-python called directly --------------------------------------------------------


def engine_vs_direct(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    from llama_cpp import Llama
    from PySide6.QtCore import QCoreApplication, QEventLoop

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager

    app = QCoreApplication.instance() or QCoreApplication([])  # noqa: F841 (the engine's signals need one)
    plugins = PluginManager().load()
    engine = Engine(plugins, store=None, library=None)
    params = {"prompt": PROMPT_TEXT, "max_new_tokens": args.tokens, "temperature": 0.0, "repetition_penalty": 1.0,
              "threads": args.threads}

    def through_engine() -> tuple[float, int]:
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        engine.job_failed.connect(loop.quit)
        start = time.perf_counter()
        job = engine.submit("text.llamacpp", params, model=str(path), seed=1)
        loop.exec()
        elapsed = time.perf_counter() - start
        engine.job_finished.disconnect(loop.quit)
        engine.job_failed.disconnect(loop.quit)
        if not job.outputs:
            raise RuntimeError(f"the engine's job failed: {job.error}")
        return elapsed, int(job.outputs[0].metadata["new_tokens"])

    llm = Llama(str(path), n_ctx=N_CTX, n_threads=args.threads, n_threads_batch=args.threads, verbose=False)
    prompt = llm.tokenize(PROMPT_TEXT.encode(), add_bos=False)

    def direct(tokens: int) -> float:
        llm.reset()
        start = time.perf_counter()
        pieces = []
        for written, token in enumerate(llm.generate(prompt, temp=0.0, top_k=1, repeat_penalty=1.0, reset=True),
                                        start=1):
            pieces.append(llm.detokenize([token]))  # as the engine does: text per token
            if written >= tokens:
                break
        return time.perf_counter() - start

    through_engine()  # warm-up: the worker starts and loads the model (not measured)
    direct(8)
    engine_rates, direct_rates = [], []
    for _ in range(max(args.runs, 5)):
        elapsed, written = through_engine()
        engine_rates.append(written / elapsed)
        direct_rates.append(written / direct(written))  # as many tokens as the engine wrote
    engine.shutdown(timeout=30)
    ratio = statistics.median(engine_rates) / statistics.median(direct_rates)
    print(f"engine {statistics.median(engine_rates):.1f} tokens/s, direct {statistics.median(direct_rates):.1f}: "
          f"ratio {ratio:.3f} (goal ≥ {ENGINE_GOAL})", file=sys.stderr)
    return {"engine_tokens_per_s": summary(engine_rates), "direct_tokens_per_s": summary(direct_rates),
            "ratio": round(ratio, 3), "goal": ENGINE_GOAL, "met": ratio >= ENGINE_GOAL}


if __name__ == "__main__":
    main()
