"""``text.llamacpp``'s parameters: the text generators' shared fields, then llama.cpp's load options."""

from __future__ import annotations

from dataclasses import dataclass

from desktop.api import param
from plugins.text.params import TextParamsBase

MAX_THREADS = 256
MAX_GPU_LAYERS = 1000


@dataclass(frozen=True)
class GGUFParams(TextParamsBase):
    """The shared fields (prompt, mode, chat, sampling), then how llama.cpp runs the model (load options: a change
    reloads it)."""

    threads: int = param(0, min=0, max=MAX_THREADS, load_option=True, label="Threads",
                         help="How many CPU threads write the text: 0 picks this computer's physical cores.")
    gpu_layers: int = param(0, min=-1, max=MAX_GPU_LAYERS, load_option=True, label="GPU layers",
                            help="How many of the model's layers run on the GPU: 0 none (CPU only), -1 all. Needs a "
                                 "GPU build of llama-cpp-python; ignored otherwise.")
