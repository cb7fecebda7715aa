"""Peak memory of model upscaling, tiled vs untiled, at the same size (``plugins/image/upscale.py``).

An ESRGAN-shaped ×4 upscaler with the real ESRGAN widths (64 features, growth 32; random weights; ``--blocks``
trunk blocks, which change the time, not the peak: activations are freed block by block) is written as a
``.safetensors`` file and loaded with :func:`plugins.image.upscale.load_upscaler`. Each run is a fresh process
that loads the upscaler, notes its resident-memory high-water mark (``ru_maxrss``), upscales a random
``--size``² picture untiled (``tile`` 0) or in ``--tile`` tiles (overlap as the image generator's upscale mode
uses: :func:`plugins.image.upscale_mode.tile_overlap`), and reports the high-water mark after, the time taken,
and the growth of the high-water mark over the loaded state (what the upscaling itself needed at its peak). The
output picture (size·4)² is part of both: its accumulators take 16 bytes per output pixel.

    .venv/bin/python -m benchmarks.upscale_tiles [--size 256] [--tile 128] [--blocks 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.stats import save_results

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024


def _child(upscaler_file: str, size: int, tile: int, threads: int) -> dict[str, float]:
    import numpy as np
    import torch
    from PIL import Image

    from plugins.image.upscale import load_upscaler
    from plugins.image.upscale_mode import tile_overlap

    torch.set_num_threads(threads)
    upscaler = load_upscaler(Path(upscaler_file))
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    start = time.perf_counter()
    result = upscaler.upscale(picture, tile=tile, overlap=tile_overlap(tile))
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert result.size == (size * upscaler.scale, size * upscaler.scale)
    return {"tile": tile, "peak_rss_mb": after / MB, "loaded_rss_mb": before / MB,
            "peak_growth_mb": (after - before) / MB, "seconds": seconds}


def _write_upscaler(path: Path, blocks: int) -> None:
    import torch
    from safetensors.torch import save_file

    from plugins.image.rrdbnet import RRDBNet, RRDBShape

    torch.manual_seed(0)
    net = RRDBNet(RRDBShape(in_channels=3, out_channels=3, features=64, growth=32, blocks=blocks, upsamples=2,
                            unshuffle=1))
    state = {(f"conv_up{int(n.split('.')[1]) + 1}.{n.rsplit('.', 1)[1]}" if n.startswith("ups.") else n):
             t.contiguous() for n, t in net.state_dict().items()}
    save_file(state, str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="the picture's side in pixels")
    parser.add_argument("--tile", type=int, default=128, help="the tile's side in pixels")
    parser.add_argument("--blocks", type=int, default=2, help="trunk blocks of the upscaler (ESRGAN has 23)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--child", nargs=2, metavar=("FILE", "TILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child[0], args.size, int(args.child[1]), args.threads)))
        return 0
    results: dict[str, object] = {"size": args.size, "scale": 4, "blocks": args.blocks, "features": 64,
                                  "threads": args.threads, "runs": []}
    with tempfile.TemporaryDirectory(prefix="studiolo-upscale-bench-") as tmp:
        upscaler = Path(tmp) / "esrgan-shaped-x4.safetensors"
        _write_upscaler(upscaler, args.blocks)
        for tile in (0, args.tile):
            done = subprocess.run([sys.executable, "-m", "benchmarks.upscale_tiles", "--size", str(args.size),
                                   "--threads", str(args.threads), "--child", str(upscaler), str(tile)],
                                  cwd=ROOT, capture_output=True, text=True, timeout=1800,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            run = json.loads(done.stdout.strip().splitlines()[-1])
            results["runs"].append(run)  # type: ignore[union-attr]
            label = "untiled" if tile == 0 else f"tiles of {tile}"
            print(f"{args.size}×{args.size} → ×4, {label:>13}: peak RSS {run['peak_rss_mb']:7.0f} MB "
                  f"(+{run['peak_growth_mb']:6.0f} MB over the loaded {run['loaded_rss_mb']:.0f} MB), "
                  f"{run['seconds']:.1f} s")
    print(f"results: {save_results('upscale_tiles', results)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
