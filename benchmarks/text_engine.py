"""The text generator through Studiolo's engine vs a direct ``model.generate`` with a ``TextIteratorStreamer``.

Same model (the demo LM, or ``--model PATH``), prompt, sampling settings and seed, in one process, alternated:
tokens per second (median ratio engine/direct and spread; goal ≥ 0.97), identical text, and the first-token
latency of each (the engine's overhead on it; goal ≤ 5 ms). Then the GUI thread's longest stalls (5 ms heartbeat)
while the writer's panel streams several generations into its editor (goal p99 ≤ 16 ms, max ≤ 50 ms).

    .venv/bin/python -m benchmarks.text_engine [--runs 9] [--tokens 200] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.stats import save_results, summary

_app = None
PROMPT = "The boats went out in the morning and"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--model", default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args)
    save_results("text_engine", results)


def run(args) -> dict:
    import torch
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication
    from transformers import AutoModelForCausalLM, AutoTokenizer, TextIteratorStreamer

    from desktop.engine.engine import Engine
    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager
    from desktop.ui.app import tune_gil_for_gui

    global _app
    _app = QApplication.instance() or QApplication([])
    tune_gil_for_gui()
    plugins = PluginManager().load()
    generator = plugins.generator("text.transformers")
    model_dir = ensure_demo_model(generator) if args.model == "demo" else Path(args.model)
    engine = Engine(plugins, store=None, library=None)
    params = {"prompt": PROMPT, "max_new_tokens": args.tokens, "temperature": 0.9, "top_p": 0.95, "top_k": 50,
              "repetition_penalty": 1.0}
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), local_files_only=True).eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    def through_engine(seed: int) -> tuple[float, float, str, int]:
        loop = QEventLoop()
        first: dict[str, float] = {}

        def previewed(_job_id: str, _chunk: object) -> None:
            first.setdefault("t", time.perf_counter())

        engine.job_previewed.connect(previewed)
        engine.job_finished.connect(loop.quit)
        start = time.perf_counter()
        job = engine.submit("text.transformers", params, model=str(model_dir), seed=seed)
        loop.exec()
        total = time.perf_counter() - start
        engine.job_previewed.disconnect(previewed)
        engine.job_finished.disconnect(loop.quit)
        output = job.outputs[0]
        return total, first["t"] - start, output.text, output.metadata["new_tokens"]

    def plain(seed: int) -> tuple[float, str, int]:
        """model.generate with no streaming at all: the raw library's speed."""
        ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
        torch.manual_seed(seed)
        start = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens,
                             do_sample=True, temperature=params["temperature"], top_p=params["top_p"],
                             top_k=params["top_k"], repetition_penalty=params["repetition_penalty"],
                             pad_token_id=pad)
        total = time.perf_counter() - start
        new = out[0, ids.shape[1]:]
        return total, tokenizer.decode(new, skip_special_tokens=True), len(new)

    def direct(seed: int) -> tuple[float, float, str, int]:
        """model.generate streaming through a TextIteratorStreamer, as transformers' docs show."""
        ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=60)
        torch.manual_seed(seed)
        kwargs = dict(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=args.tokens, do_sample=True,
                      temperature=params["temperature"], top_p=params["top_p"], top_k=params["top_k"],
                      repetition_penalty=params["repetition_penalty"], pad_token_id=pad, streamer=streamer)
        result: dict = {}
        start = time.perf_counter()
        thread = threading.Thread(target=lambda: result.setdefault("out", model.generate(**kwargs)))
        thread.start()
        chunks, first = [], None
        for chunk in streamer:
            if first is None:
                first = time.perf_counter() - start
            chunks.append(chunk)
        thread.join()
        total = time.perf_counter() - start
        new = result["out"][0, ids.shape[1]:]
        return total, first or total, tokenizer.decode(new, skip_special_tokens=True), len(new)

    through_engine(0)  # warm up: the cache, the worker, first-run allocations
    direct(0)
    plain(0)
    ratios, plain_ratios, first_engine, first_direct, same = [], [], [], [], True
    for seed in range(1, args.runs + 1):
        t_e, f_e, text_e, n_e = through_engine(seed)
        t_d, f_d, text_d, n_d = direct(seed)
        t_p, text_p, n_p = plain(seed)
        ratios.append((n_e / t_e) / (n_d / t_d))
        plain_ratios.append((n_e / t_e) / (n_p / t_p))
        first_engine.append(f_e)
        first_direct.append(f_d)
        same = same and text_e == text_d == text_p
    ratio = summary(ratios)
    plain_ratio = summary(plain_ratios)
    overhead_ms = (statistics.median(first_engine) - statistics.median(first_direct)) * 1000
    print(f"{args.tokens} new tokens, sampling, {args.runs} alternated runs")
    print(f"tokens/s engine/direct with TextIteratorStreamer: median {ratio['median']:.3f}, IQR {ratio['q1']:.3f}–"
          f"{ratio['q3']:.3f}, min {ratio['min']:.3f}, max {ratio['max']:.3f} (goal ≥ 0.97)")
    print(f"tokens/s engine/plain generate (no streaming): median {plain_ratio['median']:.3f}, IQR "
          f"{plain_ratio['q1']:.3f}–{plain_ratio['q3']:.3f}, min {plain_ratio['min']:.3f}, "
          f"max {plain_ratio['max']:.3f}")
    print(f"first token: engine {statistics.median(first_engine) * 1000:.1f} ms, direct "
          f"{statistics.median(first_direct) * 1000:.1f} ms (medians): overhead {overhead_ms:.1f} ms (goal ≤ 5 ms)")
    print(f"identical text: {same}")
    stalls = gui_stalls(plugins, engine, model_dir, args)
    engine.shutdown()
    return {"tokens_per_s_ratio": ratio, "tokens_per_s_ratio_vs_plain": plain_ratio,
            "first_token_overhead_ms": overhead_ms, "identical_text": same, "stalls": stalls}


def gui_stalls(plugins, engine, model_dir, args) -> dict:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    from desktop.ui.main_window import MainWindow

    window = MainWindow(plugins, engine)
    window.show()
    page = window.show_page("text.transformers")
    page.model_chooser.set_ref(str(model_dir))
    panel = page.custom_panel
    panel.editor.setPlainText(PROMPT)
    panel.editor.moveCursor(panel.editor.textCursor().MoveOperation.End)
    panel.max_new_tokens.setValue(args.tokens)
    clock = QElapsedTimer()
    clock.start()
    gaps, last = [], [clock.nsecsElapsed()]

    def beat() -> None:
        now = clock.nsecsElapsed()
        gaps.append((now - last[0]) / 1e6 - 5.0)
        last[0] = now

    heartbeat = QTimer()
    heartbeat.setInterval(5)
    heartbeat.timeout.connect(beat)
    heartbeat.start()
    for _ in range(4):
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        panel.generate()
        loop.exec()
        engine.job_finished.disconnect(loop.quit)
    heartbeat.stop()
    window.close()
    ordered = sorted(gaps)
    result = {"p50_ms": statistics.median(ordered), "p99_ms": ordered[int(0.99 * (len(ordered) - 1))],
              "max_ms": ordered[-1], "beats": len(ordered)}
    print(f"GUI stall while streaming into the editor: p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
          f"max {result['max_ms']:.2f} ms ({len(ordered)} beats; goal p99 ≤ 16 ms, max ≤ 50 ms)")
    return result


if __name__ == "__main__":
    main()
