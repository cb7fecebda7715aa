"""The process-wide random number generators, held by one job at a time.

Some libraries take no generator argument and draw from global state (transformers ``generate``, VITS). A job
that needs them holds this lock while it runs that call, with every global RNG seeded from its seed, so its
result is the same whether or not another generator runs at the same moment.
"""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.RLock()


@contextmanager
def hold_global_rng(seed: int) -> Iterator[None]:
    """Take the global-RNG lock and seed Python's ``random``, NumPy's legacy RNG and torch (if imported)."""
    with _LOCK:
        random.seed(seed)
        numpy = sys.modules.get("numpy")
        if numpy is not None:
            numpy.random.seed(seed % 2**32)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.manual_seed(seed)  # seeds CUDA and MPS generators too
        yield
