"""``RunContext``: the generator's line to the host while a job runs (on the generator's worker thread)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from desktop.api.errors import JobCancelled

if TYPE_CHECKING:
    from desktop.api.outputs import Output

__all__ = ["RunContext"]


class RunContext(ABC):
    """Passed to ``Generator.generate``. The host implements it; plugins only call it.

    Attributes:
        job_id: the job's id (for logs).
        seed: the job's seed, already chosen by the host (a random one when the user gave none) and recorded in
            the output's metadata. Seed every random draw from it.
        device: where to run: ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``.
        watermark: (API 0.2.3) True when the user turned on invisible watermarks (Settings → Provenance, off by
            default). A generator that can mark its outputs does so while making them (the image generator with
            ``invisible-watermark``, the text generator with transformers' ``WatermarkingConfig``), says how in the
            output's metadata (``watermark``), and finds its mark again in :meth:`Generator.detect_watermark`.
    """

    job_id: str
    seed: int
    device: str
    watermark: bool = False

    @abstractmethod
    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report progress: ``done`` of ``total`` steps (``total`` None when unknown), with an optional message.

        Call it as often as you like (every step): the host shows the first report at once and throttles the rest.
        """

    @abstractmethod
    def preview(self, obj: Any) -> None:
        """Show an intermediate result: a PIL image, a text chunk (``str``), or an audio chunk (``AudioOutput``).

        Text chunks are appended in order and never dropped; image and audio previews may be dropped when they
        come faster than the screen can show them (the latest wins). Previews sent after a cancel never land.
        """

    @property
    @abstractmethod
    def cancelled(self) -> bool:
        """True once the user cancelled this job. Check it every step or token (it is cheap)."""

    def raise_if_cancelled(self, partial: Sequence[Output] = ()) -> None:
        """End the job if it was cancelled, handing over ``partial`` outputs (what was made so far)."""
        if self.cancelled:
            raise JobCancelled(partial=partial)

    @abstractmethod
    def hold_global_rng(self) -> AbstractContextManager[None]:
        """Hold the process-wide random number generators for this job, seeded with ``self.seed``.

        Use it around calls into libraries that draw from global RNG state and take no generator argument
        (transformers ``generate``, VITS). Inside the ``with`` block no other job touches the global RNGs, so
        seeded results do not change because another generator runs at the same time. Python's ``random``,
        NumPy's legacy global RNG and torch's (CPU and CUDA) are seeded on entry — import torch *before* entering.
        Keep the block as short as the library call: other jobs that need it wait.
        """

    def addon_model(self, kind: str, ref: str, *, allow_pickle: bool = False) -> Path:
        """(API 0.2.2) The local file or folder of the add-on model ``ref`` of this generator's add-on kind ``kind``
        (an :class:`~desktop.api.AddonKind` id): a path on this machine, an imported model's name, a hub repo id
        (``org/name``, ``org/name@revision``) or one file of a repo (``org/name/file.safetensors``) already
        downloaded, or ``demo`` (the kind's demo model, built on first use). Nothing is downloaded during a job: a
        model not on this machine raises :class:`~desktop.api.ModelNotFoundError` saying where to download it. The
        weight files are checked like a main model's (pickles refused unless ``allow_pickle``, which a generator
        passes on from its ``LoadOptions``). Records the use, so the model manager lists it as used.
        """
        from desktop.api.errors import ModelNotFoundError

        raise ModelNotFoundError(f"This host cannot find {kind} models for a job.",
                                 hint="Run the job in Studiolo (the app, the CLI or desktop.testing).")

    def warn(self, message: str) -> None:  # noqa: B027 - optional for hosts: one that shows no notes drops them
        """Tell the user something about this job that is not an error (e.g. "prompt truncated to 2048 tokens")."""
