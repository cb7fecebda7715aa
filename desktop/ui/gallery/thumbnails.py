"""Gallery thumbnails: made off the GUI thread, cached on disk and in memory.

* :func:`render_thumbnail` draws one tile — an image scaled while it is decoded (``QImageReader.setScaledSize``),
  an excerpt of a text file, a small waveform of an audio file (WAV through the ``wave`` module, other formats
  through ``soundfile`` when it is installed), or a generic tile. It never raises: a file that cannot be read
  gives a *broken* tile, a file that is gone a *missing* one.
* :class:`ThumbnailDiskCache` keeps rendered tiles as PNG files under ``<cache dir>/thumbnails``, keyed by the
  file's path, the tile size and the file's mtime and size (an edited file gets a new tile).
* :class:`ThumbnailService` (GUI thread) answers from a small in-memory LRU, or queues a task on the ``thumbnails``
  pool of :mod:`desktop.ui.tasks` (newest requests first, each tile requested once) and emits ``ready(path, size)`` when
  the tile is in memory. Only QImage is used off the GUI thread (never QPixmap).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import wave
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRectF, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QImage, QImageReader, QPainter, QPen

from desktop import paths
from desktop.ui.tasks import TaskGroup, TaskState

log = logging.getLogger(__name__)

__all__ = [
    "OK",
    "BROKEN",
    "MISSING",
    "GENERIC",
    "THUMB_SIZE",
    "Thumbnail",
    "ThumbnailDiskCache",
    "ThumbnailService",
    "default_cache_folder",
    "render_thumbnail",
]

OK, BROKEN, MISSING, GENERIC = "ok", "broken", "missing", "generic"
"""A tile's status: the file's own picture, a file that cannot be read, a file that is gone, a kind without one."""

THUMB_SIZE = 160
"""The gallery grid's tile size in pixels (tiles are at most this wide and high)."""

CACHE_VERSION = 1
"""Part of every disk-cache key: bump it when the drawing changes so old tiles are not reused."""

TEXT_EXCERPT_BYTES = 2048
WAVE_CHUNK_FRAMES = 2048

_PAPER = QColor("#f7f4ec")
_INK = QColor("#33302a")
_AUDIO_BG = QColor("#243040")
_AUDIO_WAVE = QColor("#7fc4ff")
_BROKEN_BG = QColor("#5a2a2a")
_MISSING_BG = QColor("#5a4a20")
_GENERIC_BG = QColor("#3a3f47")
_LABEL = QColor("#f0f0f0")


class ThumbnailError(Exception):
    """A file could not be drawn as a thumbnail (internal: it becomes a broken tile)."""


@dataclass(frozen=True)
class Thumbnail:
    """A rendered tile and what it shows (:data:`OK`, :data:`BROKEN`, :data:`MISSING` or :data:`GENERIC`)."""

    image: QImage
    status: str


def default_cache_folder() -> Path:
    """``<cache dir>/thumbnails`` (computed only; created by the first tile saved)."""
    return paths.cache_dir() / "thumbnails"


# -- rendering (any thread) ----------------------------------------------------------------------------------------


def render_thumbnail(path: Path, kind: str, size: int = THUMB_SIZE) -> Thumbnail:
    """The tile for ``path`` (an output of ``kind``), at most ``size`` pixels wide and high. Never raises."""
    try:
        if not path.is_file():
            return Thumbnail(status_tile(size, MISSING), MISSING)
        if kind == "image":
            return Thumbnail(render_image(path, size), OK)
        if kind == "text":
            return Thumbnail(render_text(path, size), OK)
        if kind == "audio":
            image = render_audio(path, size)
            return Thumbnail(image, OK) if image is not None else Thumbnail(generic_tile(size, "♪", "audio"), GENERIC)
        return Thumbnail(generic_tile(size, "?", path.suffix.lstrip(".") or kind), GENERIC)
    except Exception as exc:  # whatever the file holds, the gallery shows a tile
        log.info("no thumbnail for %s: %s", path, exc)
        try:
            return Thumbnail(status_tile(size, BROKEN), BROKEN)
        except Exception:  # last resort: an empty image still paints as a placeholder
            return Thumbnail(QImage(), BROKEN)


def render_image(path: Path, size: int) -> QImage:
    """Decode the image already scaled down to fit ``size`` (cheap for JPEG; never a full-size copy kept)."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    reader.setDecideFormatFromContent(True)
    full = reader.size()
    if full.isValid() and not full.isEmpty():
        if full.width() > size or full.height() > size:
            reader.setScaledSize(full.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
    else:
        image = reader.read()
        if not image.isNull() and (image.width() > size or image.height() > size):
            image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
    if image.isNull():
        raise ThumbnailError(reader.errorString() or "not an image")
    if image.width() < size and image.height() < size:  # small outputs fill the tile too; pixel art stays crisp
        crisp = image.width() * 3 <= size and image.height() * 3 <= size
        image = image.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                             Qt.TransformationMode.FastTransformation if crisp
                             else Qt.TransformationMode.SmoothTransformation)
    return image.convertToFormat(QImage.Format.Format_ARGB32_Premultiplied)


def render_text(path: Path, size: int) -> QImage:
    """The first lines of a text file drawn on a paper-coloured tile."""
    with open(path, "rb") as f:
        raw = f.read(TEXT_EXCERPT_BYTES)
    text = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\x00", "")
    image = _blank(size, size, _PAPER)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        font = QFont()
        font.setPixelSize(max(8, size // 14))
        painter.setFont(font)
        painter.setPen(_INK)
        margin = max(4, size // 16)
        painter.drawText(QRectF(margin, margin, size - 2 * margin, size - 2 * margin),
                         int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap),
                         text.strip() or "…")
    finally:
        painter.end()
    return image


def render_audio(path: Path, size: int) -> QImage | None:
    """A waveform of the file, or None when its format cannot be read here (a generic audio tile then).

    Raises for a file that claims to be audio but is damaged.
    """
    reader = _open_audio(path)
    if reader is None:
        return None
    with reader:
        columns = max(8, size)
        peaks = reader.peaks(columns)
        duration = reader.duration()
    height = max(8, int(size * 0.62))
    image = _blank(size, height, _AUDIO_BG)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(QPen(_AUDIO_WAVE, 1))
        middle = height / 2
        scale = (height / 2 - 3) * 0.9 / max(float(peaks.max(initial=0.0)), 1e-6)
        for x, peak in enumerate(peaks[:size]):
            half = max(0.5, float(peak) * scale)
            painter.drawLine(int(x), int(middle - half), int(x), int(middle + half))
        font = QFont()
        font.setPixelSize(max(8, size // 13))
        painter.setFont(font)
        painter.setPen(_LABEL)
        painter.drawText(QRectF(0, 0, size - 4, height - 2),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignBottom), _duration_text(duration))
    finally:
        painter.end()
    return image


def status_tile(size: int, status: str) -> QImage:
    """The tile of a file that cannot be read (:data:`BROKEN`) or is gone (:data:`MISSING`)."""
    if status == MISSING:
        return generic_tile(size, "⚠", "missing", _MISSING_BG)
    return generic_tile(size, "✕", "cannot read", _BROKEN_BG)


def generic_tile(size: int, symbol: str, label: str, background: QColor = _GENERIC_BG) -> QImage:
    """A plain tile with a big symbol and a small label."""
    image = _blank(size, size, background)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.setPen(_LABEL)
        font = QFont()
        font.setPixelSize(max(10, size // 3))
        painter.setFont(font)
        painter.drawText(QRectF(0, 0, size, size * 0.75), int(Qt.AlignmentFlag.AlignCenter), symbol)
        font.setPixelSize(max(8, size // 11))
        painter.setFont(font)
        painter.drawText(QRectF(0, size * 0.7, size, size * 0.25), int(Qt.AlignmentFlag.AlignCenter), label)
    finally:
        painter.end()
    return image


def _blank(width: int, height: int, color: QColor) -> QImage:
    image = QImage(width, height, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(color)
    return image


def _duration_text(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds <= 0:
        return ""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(round(seconds))
    return f"{whole // 60}:{whole % 60:02d}"


# -- audio reading -------------------------------------------------------------------------------------------------


class _AudioReader:
    """Peaks of an audio file read in small chunks at evenly spaced positions (bounded work at any length)."""

    frames: int
    rate: int

    def read_at(self, start: int, count: int) -> np.ndarray:  # (frames,) absolute amplitude, any scale
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> _AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def duration(self) -> float:
        return self.frames / self.rate if self.rate > 0 else 0.0

    def peaks(self, columns: int) -> np.ndarray:
        if self.frames <= 0:
            raise ThumbnailError("the audio file holds no samples")
        if self.frames <= columns * WAVE_CHUNK_FRAMES:
            samples = self.read_at(0, self.frames)
            if samples.size == 0:
                raise ThumbnailError("the audio file's samples cannot be read")
            edges = np.linspace(0, samples.size, columns + 1).astype(int)
            return np.array([samples[a:b].max(initial=0.0) for a, b in pairwise(edges)], dtype=float)
        read_any = False
        out = np.zeros(columns, dtype=float)
        for column in range(columns):
            start = column * self.frames // columns
            chunk = self.read_at(start, WAVE_CHUNK_FRAMES)
            if chunk.size:
                read_any = True
                out[column] = float(chunk.max())
        if not read_any:
            raise ThumbnailError("the audio file's samples cannot be read")
        return out


class _WaveReader(_AudioReader):
    def __init__(self, path: Path) -> None:
        self._file = wave.open(str(path), "rb")  # noqa: SIM115 — closed by close()
        try:
            self.channels = self._file.getnchannels()
            self.width = self._file.getsampwidth()
            self.rate = self._file.getframerate()
            self.frames = self._file.getnframes()
            if self.channels < 1 or self.width not in (1, 2, 3, 4):
                raise ThumbnailError(f"unsupported WAV layout ({self.channels} channels, {self.width} bytes)")
        except BaseException:
            self._file.close()
            raise

    def read_at(self, start: int, count: int) -> np.ndarray:
        self._file.setpos(start)
        raw = self._file.readframes(count)
        usable = len(raw) - len(raw) % (self.width * self.channels)
        raw = raw[:usable]
        if self.width == 1:
            values = np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128
        elif self.width == 2:
            values = np.frombuffer(raw, dtype="<i2")
        elif self.width == 3:
            b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
            values = (b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8 >> 8
        else:
            values = np.frombuffer(raw, dtype="<i4")
        values = np.abs(values.astype(np.float64))
        return values.reshape(-1, self.channels).max(axis=1) if values.size else values

    def close(self) -> None:
        self._file.close()


class _SoundFileReader(_AudioReader):
    def __init__(self, path: Path, soundfile: Any) -> None:
        self._file = soundfile.SoundFile(str(path))
        self.rate = int(self._file.samplerate)
        self.frames = int(self._file.frames)

    def read_at(self, start: int, count: int) -> np.ndarray:
        self._file.seek(start)
        data = self._file.read(count, dtype="float32", always_2d=True)
        return np.abs(data).max(axis=1) if data.size else np.zeros(0)

    def close(self) -> None:
        self._file.close()


def _soundfile() -> Any:
    try:
        import soundfile
    except Exception:  # ImportError, or libsndfile missing (OSError)
        return None
    return soundfile


def _open_audio(path: Path) -> _AudioReader | None:
    """A reader for ``path``; None when no reader here knows its format. Raises for a damaged file."""
    soundfile = _soundfile()
    if path.suffix.lower() in (".wav", ".wave"):
        try:
            return _WaveReader(path)
        except wave.Error as exc:
            if soundfile is None:
                if str(exc).startswith("unknown format"):  # e.g. float WAV, which ``wave`` does not read
                    return None
                raise
        except EOFError as exc:
            raise ThumbnailError("the WAV file ends too soon") from exc
    if soundfile is None:
        return None
    return _SoundFileReader(path, soundfile)


# -- the disk cache (any thread) -----------------------------------------------------------------------------------


class ThumbnailDiskCache:
    """Rendered tiles as PNG files in ``folder``; reading and writing never raise."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def key(path: Path, size: int, stat: os.stat_result) -> str:
        raw = f"{CACHE_VERSION}|{path}|{size}|{stat.st_mtime_ns}|{stat.st_size}"
        return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()

    def file(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.png"

    def load(self, key: str) -> QImage | None:
        file = self.file(key)
        if not file.is_file():
            return None
        image = QImage(str(file))
        return None if image.isNull() else image

    def save(self, key: str, image: QImage) -> None:
        file = self.file(key)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".png", dir=file.parent)
            os.close(fd)
            try:
                if not image.save(temp, "PNG"):
                    raise OSError("the tile could not be encoded")
                os.replace(temp, file)
            finally:
                if os.path.exists(temp):
                    os.unlink(temp)
        except OSError as exc:  # a full or read-only cache only costs rendering again next time
            log.debug("thumbnail not cached (%s): %s", file, exc)


def load_or_render(path: Path, kind: str, size: int, cache: ThumbnailDiskCache | None) -> Thumbnail:
    """The tile from the disk cache, or rendered (and cached when it shows the file). Never raises."""
    try:
        stat = path.stat()
    except OSError:
        return render_thumbnail(path, kind, size)
    key = ThumbnailDiskCache.key(path, size, stat) if cache is not None else ""
    if cache is not None:
        try:
            cached = cache.load(key)
        except Exception:
            cached = None
        if cached is not None:
            return Thumbnail(cached, OK)
    thumbnail = render_thumbnail(path, kind, size)
    if cache is not None and thumbnail.status == OK:
        cache.save(key, thumbnail.image)
    return thumbnail


# -- the service (GUI thread) --------------------------------------------------------------------------------------


def _render_safely(render: Callable[[Path, str, int, ThumbnailDiskCache | None], Thumbnail], path: Path, kind: str,
                   size: int, cache: ThumbnailDiskCache | None, _state: TaskState) -> Thumbnail:
    """Draw one tile on a ``thumbnails`` task: a tile that cannot be drawn is a broken tile, never an error."""
    try:
        return render(path, kind, size, cache)
    except Exception as exc:
        log.warning("thumbnail of %s failed: %s", path, exc)
        return Thumbnail(QImage(), BROKEN)


class ThumbnailService(QObject):
    """Tiles on request: ``request()`` answers from memory or queues the drawing; ``ready(path, size)`` follows.

    ``requests`` counts the tiles queued for drawing (each path and size at most once while it is in memory or
    pending), so tests and diagnostics can check the gallery asks only for what it shows.

    Requests wait until they stop coming for ``settle_ms`` (the view stopped scrolling), then only the newest
    ``batch`` of them — what is on screen now — are drawn; the older ones are dropped and asked for again if their
    tiles are painted again. Flinging through 10,000 items thus draws nothing on the way, and the drawing threads
    do not compete with the scrolling for the GIL (measured in benchmarks/gallery.py).
    """

    ready = Signal(str, int)

    def __init__(self, cache_folder: Path | None = None, *, memory_items: int = 600, threads: int = 2,
                 settle_ms: int = 60, batch: int = 120, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._wanted: OrderedDict[tuple[str, int], tuple[Path, str]] = OrderedDict()
        self.batch = max(1, batch)
        self.settle_timer = QTimer(self)
        self.settle_timer.setSingleShot(True)
        self.settle_timer.setInterval(max(0, settle_ms))
        self.settle_timer.timeout.connect(self._start_wanted)
        folder = cache_folder if cache_folder is not None else default_cache_folder()
        self._cache: ThumbnailDiskCache | None = ThumbnailDiskCache(folder)
        self._memory: OrderedDict[tuple[str, int], Thumbnail] = OrderedDict()
        self._memory_items = max(16, memory_items)
        self._pending: set[tuple[str, int]] = set()
        self._stopped = False
        self._priority = 0
        self.requests = 0
        self.render: Callable[[Path, str, int, ThumbnailDiskCache | None], Thumbnail] = load_or_render
        self.tasks = TaskGroup("thumbnails", owner=self, threads=max(1, threads))

    def get(self, path: Path | str, size: int = THUMB_SIZE) -> Thumbnail | None:
        """The tile if it is in memory (marked recently used), else None. Draws nothing."""
        key = (str(path), size)
        thumbnail = self._memory.get(key)
        if thumbnail is not None:
            self._memory.move_to_end(key)
        return thumbnail

    def request(self, path: Path | str, kind: str, size: int = THUMB_SIZE) -> Thumbnail | None:
        """The tile if it is in memory; else queue its drawing (once) and return None — ``ready`` follows."""
        thumbnail = self.get(path, size)
        if thumbnail is not None or self._stopped:
            return thumbnail
        key = (str(path), size)
        if key in self._pending:
            return None
        self._pending.add(key)
        self._wanted[key] = (Path(path), kind)
        self.settle_timer.start()  # (re)started: drawing begins once the requests settle
        return None

    @Slot()
    def _start_wanted(self) -> None:
        """The requests settled: draw the newest ``batch`` of them, newest first; forget the rest."""
        if self._stopped:
            return
        wanted, self._wanted = list(self._wanted.items()), OrderedDict()
        for key, _ in wanted[:-self.batch]:
            self._pending.discard(key)
        for key, (path, kind) in wanted[-self.batch:]:
            self.requests += 1
            self._priority += 1  # the newest request first: what is on screen now beats what was scrolled past
            self.tasks.run(partial(_render_safely, self.render, path, kind, key[1], self._cache),
                           on_done=partial(self._on_done, key[0], key[1]), priority=self._priority % 1_000_000_000)

    def pending(self) -> int:
        return len(self._pending)

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Draw nothing more: drop the queued drawings and wait (at most ``timeout_ms``) for those under way,
        their results ignored. True when none is left running.

        The drawings' pool belongs to :mod:`desktop.ui.tasks` and outlives the service; the wait only bounds the
        close.
        """
        self._stopped = True
        self.settle_timer.stop()
        self._wanted.clear()
        self._pending.clear()
        return self.tasks.shutdown(timeout_ms)

    def _on_done(self, path: str, size: int, thumbnail: Thumbnail) -> None:
        key = (path, size)
        self._pending.discard(key)
        self._memory[key] = thumbnail
        self._memory.move_to_end(key)
        while len(self._memory) > self._memory_items:
            self._memory.popitem(last=False)
        self.ready.emit(path, size)
