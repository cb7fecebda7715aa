"""Remote generation (issue 23): what the remote text generator and ``studiolo serve`` cost.

1. **Tokens/s through ``remote.text`` vs the ``openai`` client alone** (goal: ratio ≥ 0.97), on one llama.cpp server
   (``llama_cpp.server``, llama-cpp-python's own OpenAI-compatible server) serving the tiny GGUF demo model. Rounds
   alternate the two arms on the same streamed completion (prompt, seed, temperature 0, ``max_tokens``):

   * ``client``: ``openai.OpenAI(...).completions.create(stream=True)``, every chunk read, timed from the request
     to the last chunk;
   * ``remote``: an ``Engine`` job of ``remote.text`` (continue mode, in this process as the app runs it), timed by
     the job's own ``generate_s`` (the request to the last chunk, each chunk relayed as a preview and a progress
     step) — not the saving to the library that follows, which a client does not do.

   Tokens/s = the pieces streamed (llama.cpp's server streams one token a piece, and sends no usage while
   streaming) ÷ the time. A random-weights model may stop at an end-of-text token early; both arms make exactly the
   same tokens (same seed, greedy: checked), so the ratio stands.

2. **Per-request overhead of ``studiolo serve`` vs a local job** (ms): the same job — a 2-step 64 px demo image, and
   a 16-token demo chat answer — run by an ``Engine`` in this process (worker processes, as the app runs them) and
   asked of a ``studiolo serve`` on 127.0.0.1 with the ``openai`` client; each arm's wall time from submit/request to
   the saved result. Both save the outputs (the server into its own library), so the difference is the HTTP
   request, the JSON/base64 encoding and the bridge between the server's event loop and its engine.

    .venv/bin/python -m benchmarks.remote_throughput [--rounds 7] [--tokens 512]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import describe, save_results, summary

ROOT = Path(__file__).resolve().parent.parent
_app = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=512)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIOLO_HOME"] = str(Path(tmp) / "home")
        os.environ["HF_HOME"] = str(Path(tmp) / "hf")
        os.environ["HF_HUB_OFFLINE"] = "1"
        for name in [k for k in os.environ if k.lower().endswith("_proxy")]:
            del os.environ[name]  # 127.0.0.1 only, never through a proxy
        sys.path.insert(0, str(ROOT / "tests"))  # the tests' server starters: one way to start a server
        results = {"tokens": tokens_per_second(args, Path(tmp)), "serve": serve_overhead(args, Path(tmp))}
    print(f"saved {save_results('remote_throughput', results)}")


def _engine(in_process: bool | None = None) -> Any:
    global _app
    from PySide6.QtCore import QCoreApplication

    from desktop.engine.engine import Engine
    from desktop.plugins import PluginManager

    _app = QCoreApplication.instance() or QCoreApplication([])
    return Engine(PluginManager().load(), in_process=in_process)


def _run_job(engine: Any, generator_id: str, params: dict, model: str, seed: int) -> Any:
    """Submit a job and run the Qt event loop until it ends; the job."""
    from PySide6.QtCore import QEventLoop

    loop = QEventLoop()
    job = engine.submit(generator_id, params, model=model, seed=seed)
    ended = lambda job_id, *_: loop.quit() if job_id == job.id else None  # noqa: E731  (one-line slot)
    for signal in (engine.job_finished, engine.job_failed, engine.job_cancelled):
        signal.connect(ended)
    if not job.state.finished:
        loop.exec()
    for signal in (engine.job_finished, engine.job_failed, engine.job_cancelled):
        signal.disconnect(ended)
    if job.error:
        raise RuntimeError(job.error)
    return job


def tokens_per_second(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import httpx2
    import openai
    from remote_processes import configure_servers, start_uvicorn

    from plugins.gguf.demo import build_tiny_gguf

    model_file = build_tiny_gguf(tmp / "gguf")
    server = start_uvicorn("-m", "llama_cpp.server", "--model", str(model_file), "--host", "127.0.0.1", "--port",
                           "0", "--n_ctx", "512")
    try:
        base = server.url + "/v1"
        configure_servers({"llama": base})
        client = openai.OpenAI(api_key="none", base_url=base, http_client=httpx2.Client(trust_env=False))
        model_id = client.models.list().data[0].id
        engine = _engine()
        prompt, seed = "Once upon a time", 11
        rates: dict[str, list[float]] = {"client": [], "remote": []}
        counts: dict[str, list[int]] = {"client": [], "remote": []}
        try:
            for round_ in range(args.rounds + 1):  # round 0 warms both paths up (connections, the model's cache)
                started = time.perf_counter()
                stream = client.completions.create(model=model_id, prompt=prompt, max_tokens=args.tokens, seed=seed,
                                                   temperature=0, stream=True)
                pieces, text = 0, ""
                for chunk in stream:
                    piece = chunk.choices[0].text if chunk.choices else ""
                    if piece:
                        pieces, text = pieces + 1, text + piece
                client_s = time.perf_counter() - started
                job = _run_job(engine, "remote.text", {"prompt": prompt, "mode": "continue",
                                                       "max_new_tokens": args.tokens, "temperature": 0.0},
                               f"remote://llama/{model_id}", seed)
                tokens = int(job.saved_metadata[0]["output"].get("chunks") or 0)
                if Path(job.saved[0]).read_text(encoding="utf-8") != text:
                    raise RuntimeError("the two arms wrote different texts: the comparison would be unfair")
                if round_ == 0:
                    continue
                counts["client"].append(pieces)
                counts["remote"].append(tokens)
                rates["client"].append(pieces / client_s)
                rates["remote"].append(tokens / job.timings["generate_s"])
        finally:
            engine.shutdown(timeout=30)
    finally:
        server.stop()
    ratios = [r / c for r, c in zip(rates["remote"], rates["client"], strict=True)]
    result = {"client_tok_s": summary(rates["client"]), "remote_tok_s": summary(rates["remote"]),
              "ratio": summary(ratios), "tokens": {k: sorted(set(v)) for k, v in counts.items()}}
    print(describe("tokens/s, openai client", result["client_tok_s"], unit="tok/s", scale=1.0))
    print(describe("tokens/s, remote.text", result["remote_tok_s"], unit="tok/s", scale=1.0))
    ratio = result["ratio"]
    print(f"{'ratio remote / client':<36} median {ratio['median']:.3f}   IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}   "
          f"min {ratio['min']:.3f}   max {ratio['max']:.3f}   (n={ratio['runs']}; tokens {result['tokens']})")
    return result


def serve_overhead(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import httpx2
    import openai
    from serve_process import start_server

    server = start_server(tmp / "serve-home")
    engine = _engine()
    times: dict[str, list[float]] = {"image_local": [], "image_serve": [], "text_local": [], "text_serve": []}
    try:
        client = openai.OpenAI(api_key="none", base_url=server.url, http_client=httpx2.Client(trust_env=False,
                                                                                             timeout=300))
        image = {"prompt": "a red fox", "steps": 2, "width": 64, "height": 64}
        chat = {"prompt": "Hello", "mode": "chat", "max_new_tokens": 16, "temperature": 0.0}
        for round_ in range(args.rounds + 1):  # round 0: models built and loaded on both sides
            started = time.perf_counter()
            _run_job(engine, "image.diffusers", image, "demo", 3)
            local_image = time.perf_counter() - started
            started = time.perf_counter()
            client.images.generate(model="image.diffusers/demo", prompt="a red fox", size="64x64", n=1,
                                   extra_body={"seed": 3, "steps": 2})
            serve_image = time.perf_counter() - started
            started = time.perf_counter()
            _run_job(engine, "text.transformers", chat, "demo", 3)
            local_text = time.perf_counter() - started
            started = time.perf_counter()
            client.chat.completions.create(model="text.transformers/demo", max_tokens=16, temperature=0, seed=3,
                                           messages=[{"role": "user", "content": "Hello"}])
            serve_text = time.perf_counter() - started
            if round_:
                for name, value in (("image_local", local_image), ("image_serve", serve_image),
                                    ("text_local", local_text), ("text_serve", serve_text)):
                    times[name].append(value)
    finally:
        engine.shutdown(timeout=30)
        server.stop()
    result: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    for kind in ("image", "text"):
        extra = [s - lo for s, lo in zip(times[f"{kind}_serve"], times[f"{kind}_local"], strict=True)]
        result[f"{kind}_overhead_s"] = summary(extra)
        print(describe(f"{kind}: local job", result[f"{kind}_local"]))
        print(describe(f"{kind}: through studiolo serve", result[f"{kind}_serve"]))
        print(describe(f"{kind}: serve overhead", result[f"{kind}_overhead_s"]))
    result["note"] = "overhead: serve minus local, round by round (the same job, after a warm-up round)"
    return result


if __name__ == "__main__":
    main()
