"""A tiny torch generator the engine tests install by entry point: random-weight MLPs built offline.

`test.noise` and `test.noise2` (the same code under two ids, so two workers run at once) turn seeded noise into
a small grey image step by step, with progress and a preview every step, and can draw from torch's global RNG
(inside the job's RNG hold) to test reproducibility while another job runs.
"""

SOURCE = '''
import json
from dataclasses import dataclass
from desktop.api import Generator, ImageOutput, hookimpl, param


def build(dest, width=8, hidden=32):
    import torch
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = _mlp(width, hidden)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(dest / "model.safetensors"))
    (dest / "config.json").write_text(json.dumps({"width": width, "hidden": hidden}))


def _mlp(width, hidden):
    import torch
    n = width * width
    return torch.nn.Sequential(torch.nn.Linear(n, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, n))


@dataclass(frozen=True)
class NoiseParams:
    prompt: str = param("", prompt=True)
    steps: int = param(4, min=1, max=100000)
    global_rng: bool = param(False, help="draw from torch's global RNG inside the job's hold")
    fail_at: int = param(-1, min=-1, help="raise RuntimeError at this step (tests)")
    dtype: str = param("float32", choices=("float32", "float64"), load_option=True)


class Noise(Generator):
    id = "test.noise"
    name = "Noise"
    kind = "image"
    Params = NoiseParams
    default_model = "demo"
    devices = ("cuda", "mps", "cpu")
    preload_modules = ("torch", "safetensors.torch")

    def build_demo_model(self, dest):
        build(dest)

    def load(self, model_path, device, options):
        import torch
        from safetensors.torch import load_file
        config = json.loads((model_path / "config.json").read_text())
        model = _mlp(config["width"], config["hidden"])
        model.load_state_dict(load_file(str(model_path / "model.safetensors")))
        model.width = config["width"]
        return model.to(device=device, dtype=getattr(torch, options["dtype"])).eval()

    def handle_size(self, model):
        return sum(p.numel() * p.element_size() for p in model.parameters())

    def generate(self, model, params, ctx):
        import torch
        from PIL import Image
        n = model.width * model.width
        dtype = next(model.parameters()).dtype
        gen = torch.Generator().manual_seed(ctx.seed)

        def image(x):
            pixels = ((x.reshape(model.width, model.width).tanh() + 1) * 127.5).to(torch.uint8).cpu().numpy()
            return Image.fromarray(pixels, mode="L")

        def run():
            x = torch.randn(1, n, generator=gen, dtype=dtype)
            for step in range(params.steps):
                ctx.raise_if_cancelled(partial=[ImageOutput(image=image(x), partial=True)])
                if step == params.fail_at:
                    raise RuntimeError(f"boom at step {step}")
                noise = torch.randn(1, n, dtype=dtype) if params.global_rng else torch.randn(
                    1, n, generator=gen, dtype=dtype)
                with torch.no_grad():
                    x = model(x.to(ctx.device)).cpu() + 0.1 * noise
                ctx.progress(step + 1, params.steps)
                ctx.preview(image(x))
            return [ImageOutput(image=image(x), metadata={"steps_run": params.steps})]

        if params.global_rng:
            with ctx.hold_global_rng():
                return run()
        return run()


class Noise2(Noise):
    id = "test.noise2"
    name = "Noise 2"


@hookimpl
def register_generators(register):
    register(Noise())
    register(Noise2())
'''


def install(site):
    site.install("studiolo-test-noise", modules={"studiolo_test_noise": SOURCE},
                 entry_points={"noise": "studiolo_test_noise"}, requires=["studiolo>=0.2,<0.3"])
