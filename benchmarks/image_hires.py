"""Hires fix through Studiolo's engine vs the same two direct diffusers calls: same model, params and seed.

The direct chain (as ``plugins/image/hires.py`` documents it): txt2img at SIZE with ``output_type="latent"`` and
a generator seeded with the seed, the latents resized ×2 (bilinear), img2img with a fresh generator seeded with the
seed. Runs alternate (engine, direct, engine, …) in one process on the demo model (or ``--model PATH``); reports
the median ratio engine/direct with its spread (goal ≤ 1.02) and whether the pixels are identical.

    .venv/bin/python -m benchmarks.image_hires [--runs 7] [--size 128] [--steps 6] [--model PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.stats import save_results, summary

_app = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--size", type=int, default=128, help="the first pass's size; the result is twice that")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--model", default="demo")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args)
    save_results("image_hires", results)


def run(args) -> dict:
    import numpy as np
    import torch
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    from desktop.engine.engine import Engine
    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager

    global _app
    _app = QApplication.instance() or QApplication([])
    plugins = PluginManager().load()
    generator = plugins.generator("image.diffusers")
    model = ensure_demo_model(generator) if args.model == "demo" else Path(args.model)
    engine = Engine(plugins, store=None, library=None)
    params = {"prompt": "a lighthouse at dusk", "steps": args.steps, "width": args.size, "height": args.size,
              "guidance_scale": 5.0, "preview_every": 0, "hires_scale": 2, "hires_upscaler": "latent",
              "hires_steps": args.steps, "hires_denoise": 0.5}
    txt2img = AutoPipelineForText2Image.from_pretrained(str(model), local_files_only=True)
    txt2img.set_progress_bar_config(disable=True)
    img2img = AutoPipelineForImage2Image.from_pipe(txt2img)
    img2img.set_progress_bar_config(disable=True)
    factor = txt2img.vae_scale_factor

    def through_engine(seed: int):
        loop = QEventLoop()
        engine.job_finished.connect(loop.quit)
        start = time.perf_counter()
        job = engine.submit("image.diffusers", params, model=str(model), seed=seed)
        loop.exec()
        elapsed = time.perf_counter() - start
        engine.job_finished.disconnect(loop.quit)
        return elapsed, np.asarray(job.outputs[0].image)

    def direct(seed: int):
        start = time.perf_counter()
        common = {"prompt": params["prompt"], "guidance_scale": params["guidance_scale"]}
        latents = txt2img(**common, num_inference_steps=args.steps, width=args.size, height=args.size,
                          output_type="latent", generator=torch.Generator("cpu").manual_seed(seed)).images
        side = 2 * args.size // factor
        larger = torch.nn.functional.interpolate(latents, size=(side, side), mode="bilinear", antialias=False)
        image = img2img(**common, image=larger, strength=0.5, num_inference_steps=args.steps,
                        generator=torch.Generator("cpu").manual_seed(seed)).images[0]
        return time.perf_counter() - start, np.asarray(image)

    through_engine(0)  # warm up: load into the cache, build the img2img pipeline, first-run allocations
    direct(0)
    ratios, same = [], True
    times: dict[str, list[float]] = {"engine": [], "direct": []}
    for seed in range(1, args.runs + 1):
        t_engine, pixels_engine = through_engine(seed)
        t_direct, pixels_direct = direct(seed)
        times["engine"].append(t_engine)
        times["direct"].append(t_direct)
        ratios.append(t_engine / t_direct)
        same = same and np.array_equal(pixels_engine, pixels_direct)
    engine.shutdown()
    ratio = summary(ratios)
    print(f"hires fix {args.size}→{2 * args.size}, {args.steps} + {int(args.steps * 0.5)} steps, "
          f"{args.runs} alternated runs")
    print(f"engine {statistics.median(times['engine']) * 1000:.0f} ms, direct "
          f"{statistics.median(times['direct']) * 1000:.0f} ms (medians)")
    print(f"ratio engine/direct: median {ratio['median']:.3f}, IQR {ratio['q1']:.3f}–{ratio['q3']:.3f}, "
          f"min {ratio['min']:.3f}, max {ratio['max']:.3f} (goal ≤ 1.02)")
    print(f"identical pixels: {same}")
    return {"ratio": ratio, "identical_pixels": same, "times": times}


if __name__ == "__main__":
    main()
