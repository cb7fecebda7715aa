"""What provenance costs (issue 21): signing (C2PA Content Credentials) and the invisible watermarks, per image and
per minute of audio, against the time it takes to make them — median and spread, and the ratio.

* **Image** (512×512, the image generator's demo model — a tiny random SD — through the generator's own code, on
  this process's CPU): generation at 2 steps (``demo``) and at 30 (a realistic step count; with a real SD 1.5
  model each step costs far more, so there the ratio is smaller still); the host's PNG encoding with metadata;
  signing those bytes (:func:`desktop.provenance.c2pa_sign.sign_bytes`, the saving path's call); the watermark
  (``plugins.image.watermark.mark``) and reading it back (what ``studiolo verify`` does).
* **Audio**: the speech demo (tiny VITS) making twelve sentences, scaled to seconds of compute per minute of audio;
  signing one minute of 16-bit WAV at its sample rate.
* **Text**: the text demo model writing ``--tokens`` tokens with and without transformers' ``WatermarkingConfig``
  (the logits processor's cost per token), alternated.

    .venv/bin/python -m benchmarks.provenance_cost [--runs 11] [--tokens 200]

Results: benchmarks/results/provenance_cost.json.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.stats import describe, save_results, summary

SPEECH = ("The studio was quiet in the morning. The light fell on the desk. She wrote a line, then another line. "
          "Outside, a tram went by. The kettle clicked off in the kitchen. Nobody called before noon.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("STUDIOLO_HOME", str(Path(tmp) / "home"))
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        results = run(args, Path(tmp))
    print(f"saved {save_results('provenance_cost', results)}")


def timed(fn: Any, runs: int) -> tuple[dict[str, float], Any]:
    samples, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        samples.append(time.perf_counter() - start)
    return summary(samples), value


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from desktop.api import LoadOptions
    from desktop.library import default_encode
    from desktop.provenance.c2pa_sign import sign_bytes
    from desktop.provenance.keys import create_signing_keys
    from desktop.testing import run_generator

    keys = create_signing_keys(tmp / "keys")
    claims = {"generator": "image.diffusers", "model": "demo", "weights_sha256": "ab" * 32,
              "prompt": "a lighthouse at dusk, oil on canvas", "seed": 1}
    results: dict[str, Any] = {"runs": args.runs}

    # -- image -------------------------------------------------------------------------------------------------
    from plugins.image.demo import build_tiny_sd
    from plugins.image.generator import DiffusersImageGenerator
    from plugins.image.watermark import mark, read

    image_gen = DiffusersImageGenerator()
    build_tiny_sd(tmp / "sd")
    handle = image_gen.load(tmp / "sd", "cpu", LoadOptions({"dtype": "auto", "attention_slicing": False,
                                                            "vae_tiling": False, "cpu_offload": False}))
    base = {"prompt": claims["prompt"], "width": 512, "height": 512}
    image: dict[str, Any] = {}
    for label, steps in (("demo_2_steps", 2), ("realistic_30_steps", 30)):
        runs = args.runs if steps <= 2 else max(3, args.runs // 3)
        image[f"generate_{label}"], out = timed(
            lambda steps=steps: run_generator(image_gen, {**base, "steps": steps}, handle=handle, seed=1), runs)
    picture = out.outputs[0]
    metadata = {"generator": "image.diffusers", "params": base, "prompt": base["prompt"]}
    image["encode_png"], encoded = timed(lambda: default_encode(picture, metadata), args.runs)
    image["sign"], signed = timed(lambda: sign_bytes(encoded.data, ".png", claims=claims, include_prompt=True,
                                                     keys=keys), args.runs)
    image["watermark_mark"], marked = timed(lambda: mark(picture.image), args.runs)
    image["watermark_read"], check = timed(lambda: read(marked), args.runs)
    image["signed_bytes_added"] = len(signed) - len(encoded.data)
    image["watermark_read_back"] = {"detected": check.detected, "score": check.score}
    marks = image["sign"]["median"] + image["watermark_mark"]["median"]
    for label in ("demo_2_steps", "realistic_30_steps"):
        image[f"ratio_sign_and_mark_to_generate_{label}"] = marks / image[f"generate_{label}"]["median"]
    results["image_512"] = image

    # -- audio -------------------------------------------------------------------------------------------------
    import numpy as np

    from desktop.api import AudioOutput
    from desktop.models.demo import ensure_demo_model
    from desktop.plugins import PluginManager

    plugins = PluginManager().load(third_party=False)
    speech = plugins.generator("audio.speech")
    speech_handle = speech.load(ensure_demo_model(speech), "cpu", LoadOptions({}))
    audio: dict[str, Any] = {}
    audio["generate"], made = timed(lambda: run_generator(speech, {"text": SPEECH}, handle=speech_handle, seed=1),
                                    args.runs)
    clip = made.outputs[0]
    seconds = len(clip.samples) / clip.sample_rate
    audio["clip_seconds"] = seconds
    audio["generate_per_minute_s"] = audio["generate"]["median"] / seconds * 60
    minute = AudioOutput(samples=np.resize(clip.samples, clip.sample_rate * 60), sample_rate=clip.sample_rate)
    wav = default_encode(minute, {"generator": "audio.speech"})
    audio["sign_one_minute"], signed_wav = timed(
        lambda: sign_bytes(wav.data, ".wav", claims={**claims, "generator": "audio.speech"}, include_prompt=True,
                           keys=keys), args.runs)
    audio["wav_bytes"] = len(wav.data)
    audio["signed_bytes_added"] = len(signed_wav) - len(wav.data)
    audio["ratio_sign_to_generate_per_minute"] = audio["sign_one_minute"]["median"] / audio["generate_per_minute_s"]
    results["audio_minute"] = audio

    # -- text --------------------------------------------------------------------------------------------------
    text_gen = plugins.generator("text.transformers")
    text_handle = text_gen.load(ensure_demo_model(text_gen), "cpu", LoadOptions({}))
    params = {"prompt": "The boats went out in the morning and", "max_new_tokens": args.tokens,
              "temperature": 1.0}
    plain, marked_runs = [], []
    for _ in range(args.runs):  # alternated: drift falls on both arms alike
        for watermark, into in ((False, plain), (True, marked_runs)):
            start = time.perf_counter()
            run_generator(text_gen, params, handle=text_handle, seed=3, watermark=watermark)
            into.append(time.perf_counter() - start)
    text = {"generate": summary(plain), "generate_watermarked": summary(marked_runs),
            "ratio_watermarked_to_plain": summary([m / p for m, p in zip(marked_runs, plain, strict=True)])}
    results["text"] = text

    for section, values in results.items():
        if not isinstance(values, dict):
            continue
        print(f"== {section}")
        for name, value in values.items():
            if isinstance(value, dict) and "median" in value:
                print(f"{name:<36} median {value['median']:.3f}   IQR {value['q1']:.3f}–{value['q3']:.3f}"
                      if name.startswith("ratio") else describe(name, value))
            else:
                print(f"{name:<36} {value}")
    return results


if __name__ == "__main__":
    main()
