"""What both audio generators share: their panel, FLAC/WAV files with metadata inside, reuse parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop.api import AudioOutput, Generator


class AudioGenerator(Generator):
    """Base of the speech and music generators: outputs saved as FLAC with Vorbis comments (Studiolo's JSON among
    them), parameters read back from a FLAC or WAV file, the audio panel built from ``Params``, and the size of a
    loaded model (each handle has ``size_bytes()``)."""

    def handle_size(self, handle: Any) -> int | None:
        return handle.size_bytes()

    def encode_output(self, output: Any, metadata: dict[str, Any]) -> Any:
        from plugins.audio.metadata import encode

        return encode(output, metadata, "flac") if isinstance(output, AudioOutput) else None

    def params_from_file(self, path: Path) -> Any | None:
        from plugins.audio.metadata import read_reuse

        try:
            reuse = read_reuse(path)
        except Exception:  # read_reuse never raises; this keeps the contract if it ever did
            return None
        return reuse.params if reuse is not None and reuse.generator == self.id else None

    def create_panel(self, host: Any) -> Any:
        from plugins.audio.panel import create_panel

        return create_panel(host, self.Params, reuse_from_file=self.reuse_from_file)

    def reuse_from_file(self, path: Path) -> Any | None:
        """What made a file this generator wrote (params, seed, model: a ``metadata.Reuse``), or None. Never
        raises."""
        from plugins.audio.metadata import read_reuse

        try:
            reuse = read_reuse(path)
        except Exception:  # read_reuse never raises; this keeps the contract if it ever did
            return None
        return reuse if reuse is not None and reuse.generator == self.id else None
