"""A third-party plugin for the training tests, installed by entry point: ``toy.line`` fits y = w·x + b to CSV
rows with numpy (deterministic, fast; a bootstrap sample per step so the RNG state matters on resume), a trainer
written against the public API only."""

from __future__ import annotations

from pathlib import Path

PLUGIN = '''
import json
from dataclasses import dataclass
from pathlib import Path

from desktop.api import (AddonKind, Generator, TrainingKind, TrainingResult, file_manifest, hookimpl, param,
                         training_files)


@dataclass(frozen=True)
class Params:
    prompt: str = param("", prompt=True)


@dataclass(frozen=True)
class FitParams:
    data: list[str] = param(default_factory=list, help="CSV files or folders of x,y rows")
    steps: int = param(200, min=1, max=1_000_000)
    learning_rate: float = param(0.05, min=0.0, max=10.0)
    checkpoint_every: int = param(50, min=0, max=1_000_000)
    work: int = param(20_000, min=1, max=10_000_000, help="rows of extra arithmetic per step")
    peak_bytes: int = param(1000, min=0, max=2**62)


FIT = TrainingKind("fit", "Fit a line", FitParams, result_kind="weights", description="Least squares, slowly.")


class Line(Generator):
    id, name, kind, Params, default_model = "toy.line", "Line", "text", Params, "demo"
    addon_kinds = (AddonKind("weights", "Fitted lines", model_file_patterns=("*.safetensors",)),)
    training_kinds = (FIT,)

    def build_demo_model(self, dest):
        (dest / "prior.json").write_text(json.dumps({"w": 0.0, "b": 0.0}))

    def load(self, model_path, device, options):
        return None

    def generate(self, handle, params, ctx):
        return []

    def train(self, model_path, device, kind, params, ctx):
        import numpy as np

        files = training_files(params.data, (".csv",), param_name="data")
        rows = np.array([[float(v) for v in line.split(",")] for f in files
                         for line in Path(f).read_text().split() if line], dtype=np.float64)
        x, y = rows[:, 0], rows[:, 1]
        prior = json.loads((Path(model_path) / "prior.json").read_text())
        w, b, start = prior["w"], prior["b"], 0
        rng = np.random.default_rng(ctx.seed)
        if ctx.resume_from is not None:
            start, folder = ctx.resume_from
            state = json.loads((folder / "state.json").read_text())
            w, b = state["w"], state["b"]
            rng.bit_generator.state = state["rng"]
        ctx.check_fit(peak_bytes=params.peak_bytes, seconds_per_step=0.001)
        filler = np.linspace(0.0, 1.0, params.work)
        for step in range(start + 1, params.steps + 1):
            pick = rng.integers(0, len(x), size=len(x))  # a bootstrap sample: the RNG state matters on resume
            err = w * x[pick] + b - y[pick]
            w -= params.learning_rate * float(np.mean(err * x[pick]))
            b -= params.learning_rate * float(np.mean(err))
            float(np.sum(np.sin(filler * step)))  # the cost of a real step
            ctx.step_done(step, params.steps, float(np.mean(err ** 2)))
            if ctx.checkpoint_due(step, params.checkpoint_every, params.steps):
                state = {"w": w, "b": b, "rng": rng.bit_generator.state}
                ctx.save_checkpoint(step, lambda folder: (folder / "state.json").write_text(json.dumps(state)))
            ctx.raise_if_stopping()
        from safetensors.numpy import save_file

        out = ctx.work_dir / "result" / "line.safetensors"
        out.parent.mkdir(exist_ok=True)
        save_file({"w": np.array([w]), "b": np.array([b])}, str(out), metadata={"format": "line"})
        return TrainingResult(out, metadata={"rows": len(x)}, dataset=file_manifest(files))


@hookimpl
def register_generators(register):
    register(Line())
'''


def install_line(site) -> None:
    site.install("studiolo-line", modules={"studiolo_line": PLUGIN}, entry_points={"line": "studiolo_line"})


def line_data(folder: Path) -> Path:
    """Seven rows of y = 2x + 1 in two CSV files (and a file that is not data)."""
    folder.mkdir(parents=True)
    (folder / "a.csv").write_text("\n".join(f"{x},{2 * x + 1}" for x in (0.0, 0.5, 1.0, 1.5)))
    (folder / "b.csv").write_text("\n".join(f"{x},{2 * x + 1}" for x in (2.0, 2.5, 3.0)))
    (folder / "notes.md").write_text("not data")
    return folder
