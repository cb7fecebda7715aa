"""Changing a clip's sample rate with SciPy's polyphase filter (no torchaudio: it pins an exact torch).

SciPy and NumPy are imported inside the functions, which run on the generator's worker thread.
"""

from __future__ import annotations

from math import gcd
from typing import Any

__all__ = ["resample", "resampled_length"]


def resampled_length(frames: int, source_rate: int, target_rate: int) -> int:
    """How many frames :func:`resample` returns for ``frames`` frames: ``ceil(frames × target / source)``."""
    if target_rate in (0, source_rate):
        return frames
    g = gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    return -(-frames * up // down)


def resample(samples: Any, source_rate: int, target_rate: int) -> Any:
    """``samples`` (float, shape ``(frames,)`` or ``(frames, channels)``) at ``target_rate``, as float32 in [-1, 1].

    ``target_rate`` 0 or equal to ``source_rate`` returns the samples unchanged. The length changes in proportion
    (see :func:`resampled_length`); the anti-aliasing filter keeps what is below the lower Nyquist frequency.
    """
    import numpy as np

    if source_rate <= 0 or target_rate < 0:
        raise ValueError(f"sample rates must be positive (got {source_rate} Hz → {target_rate} Hz)")
    if target_rate in (0, source_rate):
        return samples
    from scipy.signal import resample_poly

    g = gcd(source_rate, target_rate)
    up, down = target_rate // g, source_rate // g
    data = np.asarray(samples, dtype=np.float32)
    if len(data) == 0:
        return np.zeros((0,) + data.shape[1:], dtype=np.float32)
    out = resample_poly(data, up, down, axis=0)
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
