"""Dataset folders that the Hugging Face ``datasets`` library loads with no code (a batch's output, a gallery export).

Layout (everything at the folder's root)::

    000000-0.png  000001-0.png …   the outputs, named by their row's ``id``
    metadata.jsonl                 one row per image/audio file (``file_name`` + the columns below)
    data.jsonl                     instead, for text: one row per text (the columns below + ``text``)
    dataset.parquet                with ``--format parquet`` only: every row, its file embedded
    README.md                      the dataset card (YAML front matter + how the dataset was made)
    SHA256SUMS                     ``sha256sum -c SHA256SUMS`` checks every file above
    .studiolo-batch/               the run journal (a dot folder: the loaders skip it, as they skip dot files)

``load_dataset("imagefolder", data_dir=OUT)``, ``load_dataset("audiofolder", data_dir=OUT)``,
``load_dataset("json", data_files=OUT/"data.jsonl")`` and ``load_dataset("parquet", data_files=…)`` read it.
Every row has the same columns (:data:`COLUMNS`), JSON scalars only (``params`` is a JSON text column).

No Qt and no torch here; ``pyarrow`` is imported only to write Parquet.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Collection, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from desktop.api import ParamError, StudioloError, atomic_path, atomic_write_bytes
from desktop.batch.journal import file_sha256

__all__ = [
    "CARD",
    "COLUMNS",
    "FORMATS",
    "MANIFEST",
    "METADATA",
    "PARQUET",
    "TEXT_DATA",
    "DatasetWriter",
    "default_format",
    "export_items",
    "model_weights_hash",
]

FORMATS = ("imagefolder", "audiofolder", "jsonl", "parquet")
COLUMNS = ("id", "prompt", "negative_prompt", "seed", "params", "model", "model_sha256", "generator",
           "generator_version", "license", "source_file", "source_sha256", "batch_row")
"""The metadata columns of every row (plus ``file_name`` for a file, ``text`` for a text)."""

METADATA = "metadata.jsonl"  # imagefolder / audiofolder rows
TEXT_DATA = "data.jsonl"  # jsonl rows
CARD = "README.md"
MANIFEST = "SHA256SUMS"
PARQUET = "dataset.parquet"  # no split word in it: the folder loaders would take it as the "train" split

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aiff", ".aif"})
TEXT_SUFFIXES = frozenset({".txt", ".md"})

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}$")
_CHUNK = 1024 * 1024


def default_format(kind: str) -> str:
    """The format a generator's kind exports to: image → imagefolder, audio → audiofolder, anything else → jsonl."""
    return {"image": "imagefolder", "audio": "audiofolder"}.get(kind, "jsonl")


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ParamError("format", fmt, "one of " + ", ".join(FORMATS))
    return fmt


def _media(suffix: str) -> str:
    """"image", "audio", "text" or "" (another kind of file) for a file suffix."""
    suffix = suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in AUDIO_SUFFIXES:
        return "audio"
    if suffix in TEXT_SUFFIXES:
        return "text"
    return ""


class DatasetWriter:
    """Writes one dataset folder: files + metadata as ``datasets.load_dataset`` reads them with no code.

    ``fmt`` is one of :data:`FORMATS`. ``card`` says how the dataset was made, for its README (every key optional):
    ``title``, ``generator``, ``generator_version``, ``kind`` (image/audio/text), ``model``, ``model_sha256``,
    ``license``, ``params`` (the base params, a dict), ``seed_mode``, ``seed``, ``total`` (items planned),
    ``command`` (the command line), ``source`` (a dict: inputs, template, options), ``description`` (prose),
    ``date`` (when the batch started; default: now — give it for a card that is the same after a resume).

    Not for several processes at once; its methods may be called from any one thread at a time (a lock guards
    them anyway).
    """

    def __init__(self, out: Path, fmt: str, *, card: dict[str, Any]) -> None:
        self.out = Path(out)
        self.fmt = _check_format(fmt)
        self.card = dict(card)
        self._lock = threading.RLock()
        self._rows: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._hashes: dict[str, str] = {}  # file name -> sha256 of the files written or checked
        self._media: str | None = None  # "image" / "audio" / "text" once the first row is in
        self.out.mkdir(parents=True, exist_ok=True)
        for name in (METADATA, TEXT_DATA):  # a new dataset: no rows of an earlier one
            with suppress(FileNotFoundError):
                (self.out / name).unlink()

    # -- resuming ----------------------------------------------------------------------------------------------

    @classmethod
    def resume(cls, out: Path, fmt: str, *, card: dict[str, Any],
               keep_ids: Collection[str] | None = None) -> DatasetWriter:
        """Reopen the dataset in ``out``, keeping its rows: those whose line is whole and whose file is there (and,
        given ``keep_ids``, whose ``id`` is in it). The metadata file is rewritten with exactly those rows; the
        files of rows dropped are removed (their items run again)."""
        self = cls.__new__(cls)
        self.out = Path(out)
        self.fmt = _check_format(fmt)
        self.card = dict(card)
        self._lock = threading.RLock()
        self._rows = []
        self._ids = set()
        self._hashes = {}
        self._media = None
        self.out.mkdir(parents=True, exist_ok=True)
        found: dict[str, dict[str, Any]] = {}
        dropped: list[dict[str, Any]] = []
        for name in (METADATA, TEXT_DATA):
            for row in _read_rows(self.out / name):
                file_name = row.get("file_name")
                if file_name is not None and not (isinstance(file_name, str) and (self.out / file_name).is_file()):
                    dropped.append(row)
                    continue
                previous = found.pop(str(row["id"]), None)
                if previous is not None and previous.get("file_name") != row.get("file_name"):
                    dropped.append(previous)
                found[str(row["id"])] = row
        self._rows = list(found.values())
        self._ids = set(found)
        if self._rows:
            self._media = _row_media(self._rows[0])
        if keep_ids is not None:
            self.keep_only(keep_ids)
        else:
            self._rewrite()
            self._remove_files(dropped)
        return self

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows written so far (copies), in order; each has ``file_name`` or ``text``."""
        with self._lock:
            return [dict(row) for row in self._rows]

    def keep_only(self, keep: Iterable[str | int]) -> None:
        """Keep only the rows named in ``keep`` — by ``id`` (a string), or by item index (an int: the number before
        the id's first ``-``, as ``000012-0`` is item 12's first output); the files of the rest are removed."""
        ids = {k for k in keep if isinstance(k, str)}
        indexes = {k for k in keep if isinstance(k, int)}
        with self._lock:
            kept, dropped = [], []
            for row in self._rows:
                (kept if row["id"] in ids or _item_index(row["id"]) in indexes else dropped).append(row)
            self._rows = kept
            self._ids = {row["id"] for row in kept}
            self._rewrite()
            self._remove_files(dropped)

    # -- writing -------------------------------------------------------------------------------------------------

    def add(self, row: dict[str, Any], file: Path | None = None, text: str | None = None) -> list[dict[str, Any]]:
        """Add one row: ``row`` holds the metadata columns (``file_name`` is added here), ``file`` an output file to
        copy in (named ``<row id><suffix>``), ``text`` a text output (the ``text`` column). The row is appended to
        the metadata durably (flushed and fsync'd) after its file. Returns the files written, as
        ``[{"name", "sha256", "size"}]`` (empty for a text row).

        Raises :class:`ParamError` for a row this format cannot hold (a text in an imagefolder, a bad id) and
        ``OSError`` when the disk refuses (full, gone); a failed add leaves no row and no file behind."""
        if file is None and text is None:
            raise ParamError("output", None, "a file or a text to add to the dataset")
        clean = _normalise(row)
        file = Path(file) if file is not None else None
        media = "text" if file is None else _media(file.suffix)
        if file is not None and media == "text" and text is None and self.fmt in ("jsonl", "parquet"):
            text, file = file.read_text(encoding="utf-8"), None
        with self._lock:
            self._check_media(media, file)
            written: list[dict[str, Any]] = []
            if file is not None:
                name = f"{clean['id']}{file.suffix.lower()}"
                digest, size = _copy(file, self.out / name)
                self._hashes[name] = digest
                clean = {"file_name": name, **clean}
                written.append({"name": name, "sha256": digest, "size": size})
            if text is not None:
                clean["text"] = text
            if self._media is None:
                self._media = media
            if clean["id"] in self._ids:  # the same row again (its item ran again after a resume): replaced
                known = next(i for i, r in enumerate(self._rows) if r["id"] == clean["id"])
                self._rows[known] = clean
                self._rewrite()
            else:
                self._append(clean)
                self._rows.append(clean)
                self._ids.add(clean["id"])
            return written

    def _check_media(self, media: str, file: Path | None) -> None:
        shown = file.name if file is not None else "a text"
        wanted = {"imagefolder": ("image",), "audiofolder": ("audio",)}.get(self.fmt)
        if wanted is not None and media not in wanted:
            raise ParamError("format", self.fmt, f"an {self.fmt} holds {wanted[0]} files only, not {shown}",
                             hint="Choose --format jsonl (text) or parquet, or the folder format of the outputs' "
                                  "kind.")
        if self.fmt == "parquet" and media == "":
            raise ParamError("format", self.fmt, f"Parquet embeds images, audio and texts, not {shown}")
        if self._media is not None and media != self._media and self.fmt == "parquet":
            raise ParamError("format", self.fmt, f"one dataset holds one kind of output: {self._media}, then "
                             f"{media} ({shown})", hint="Export each kind into its own folder.")

    def _metadata_path(self) -> Path:
        if self.fmt == "jsonl" or (self.fmt == "parquet" and self._media == "text"):
            return self.out / TEXT_DATA
        return self.out / METADATA

    def _append(self, row: dict[str, Any]) -> None:
        line = (json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8")
        path = self._metadata_path()
        with open(path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def _rewrite(self) -> None:
        path = self._metadata_path()
        data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in self._rows).encode("utf-8")
        if data or path.exists():
            atomic_write_bytes(path, data)

    def _remove_files(self, rows: Iterable[dict[str, Any]]) -> None:
        kept = {row.get("file_name") for row in self._rows}
        for row in rows:
            name = row.get("file_name")
            if isinstance(name, str) and name not in kept and "/" not in name and not name.startswith("."):
                self._hashes.pop(name, None)
                with suppress(FileNotFoundError):
                    (self.out / name).unlink()

    # -- finishing -----------------------------------------------------------------------------------------------

    def finish(self, *, complete: bool, done: int | None = None) -> None:
        """Write the Parquet file (``parquet`` only), the card ``README.md`` and the manifest ``SHA256SUMS`` (every
        file of the dataset with its SHA-256, in ``sha256sum -c`` form), each atomically. ``complete`` False: the
        batch stopped early (cancelled, a full disk), which the card says, with ``done`` items (default: the rows)
        of the card's ``total``. Safe to call again: everything is rewritten from the rows."""
        with self._lock:
            metadata = self._metadata_path()
            if not metadata.exists():
                atomic_write_bytes(metadata, b"")
            names = [row["file_name"] for row in self._rows if "file_name" in row] + [metadata.name]
            if self.fmt == "parquet":
                self._write_parquet()
                names.append(PARQUET)
            card = self._card_text(complete=complete, done=done)
            atomic_write_bytes(self.out / CARD, card.encode("utf-8"))
            names.append(CARD)
            lines = []
            for name in sorted(set(names)):
                digest = self._hashes.get(name) if name not in (metadata.name, PARQUET, CARD) else None
                if digest is None:
                    digest = file_sha256(self.out / name)
                    self._hashes[name] = digest
                lines.append(f"{digest}  {name}\n")
            atomic_write_bytes(self.out / MANIFEST, "".join(lines).encode("utf-8"))

    def _write_parquet(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise StudioloError("Writing Parquet needs the pyarrow package, which is not installed.",
                                hint='Install it with `pip install "studiolo[parquet]"`, or choose another '
                                     "--format.") from exc
        media = self._media if self._media in ("image", "audio") else None
        records = []
        for row in self._rows:
            record = {key: value for key, value in row.items() if key != "file_name"}
            if media is not None:
                name = row["file_name"]
                record = {media: {"bytes": (self.out / name).read_bytes(), "path": name}, **record}
            records.append(record)
        table = pa.Table.from_pylist(records) if records else pa.table({c: pa.array([], pa.string()) for c in
                                                                        COLUMNS})
        if media is not None:
            features = {media: {"_type": media.capitalize()}}
            table = table.replace_schema_metadata({b"huggingface": json.dumps({"info": {"features": features}})})
        path = self.out / PARQUET
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)

    # -- the card ------------------------------------------------------------------------------------------------

    def _card_text(self, *, complete: bool, done: int | None) -> str:
        card, rows = self.card, self._rows
        kind = card.get("kind") or {"image": "image", "audio": "audio"}.get(self._media or "", "text")
        generator = str(card.get("generator") or _common(rows, "generator") or "")
        total = card.get("total")
        done = len(rows) if done is None else done
        yaml = ["---"]
        license_ = str(card.get("license") or _common(rows, "license") or "")
        if license_:
            slug = license_.strip().lower()
            if re.fullmatch(r"[a-z0-9][a-z0-9.+-]*", slug):
                yaml.append(f"license: {slug}")
            else:
                yaml += ["license: other", f"license_name: {json.dumps(license_)}"]
        yaml += ["tags:", "- synthetic", "- studiolo"]
        yaml += ["task_categories:", f"- {_task(kind, generator, rows)}"]
        yaml += ["size_categories:", f"- {_size_category(len(rows))}"]
        yaml += ["configs:", "- config_name: default", "  data_files:", "  - split: train", "    path:"]
        for pattern in self._data_patterns():
            yaml.append(f"    - {json.dumps(pattern)}")
        yaml.append("---")

        from desktop import __version__

        title = card.get("title") or f"Synthetic {kind} dataset made with Studiolo"
        body = [f"# {title}", ""]
        if card.get("description"):
            body += [str(card["description"]), ""]
        if complete:
            status = f"Complete: {done} item(s)" + ("" if total is None else f" of {total}") + f", {len(rows)} row(s)."
        else:
            status = (f"**Incomplete**: the batch stopped early (cancelled, or an error such as a full disk) after "
                      f"{done} item(s)" + ("" if total is None else f" of {total}") + f"; {len(rows)} row(s) here, "
                      "each one whole.")
        body += ["## How it was made", "", status, ""]
        version = card.get("generator_version") or _common(rows, "generator_version")
        facts = [
            ("Generator", f"`{generator}`" + (f" {version}" if version else "") if generator else ""),
            ("Model", f"`{card.get('model') or _common(rows, 'model') or ''}`".replace("``", "")),
            ("Model weights SHA-256", f"`{card.get('model_sha256') or _common(rows, 'model_sha256') or ''}`"
             .replace("``", "")),
            ("Model licence", license_),
            ("Seeds", _seeds(card)),
            ("Parameters", f"`{json.dumps(card['params'], ensure_ascii=False, sort_keys=True)}`"
             if card.get("params") else ""),
            ("Source", f"`{json.dumps(card['source'], ensure_ascii=False, sort_keys=True)}`"
             if card.get("source") else ""),
            ("Command", f"`{card['command']}`" if card.get("command") else ""),
            ("Date", str(card.get("date") or time.strftime("%Y-%m-%d %H:%M:%S %z"))),
            ("Studiolo", __version__),
        ]
        body += [f"- **{label}**: {value}" for label, value in facts if value]
        body += ["", "Each row records the model, its weights' hash, the seed and every parameter, so any item can be "
                 "made again.", "", "## Columns", "", self._columns_text(), "", "## Loading it", "", "```python",
                 "from datasets import load_dataset", "", self._load_example(), "```", "", "## Checking it", "",
                 f"`{MANIFEST}` lists the SHA-256 of every file: run `sha256sum -c {MANIFEST}` in this folder.", ""]
        return "\n".join(yaml) + "\n\n" + "\n".join(body)

    def _data_patterns(self) -> list[str]:
        if self.fmt == "parquet":
            return [PARQUET]
        metadata = self._metadata_path().name
        if metadata == TEXT_DATA:
            return [TEXT_DATA]
        suffixes = sorted({Path(row["file_name"]).suffix for row in self._rows if "file_name" in row})
        return [f"*{suffix}" for suffix in suffixes] + [METADATA]

    def _columns_text(self) -> str:
        first = {"image": "`image` (the picture)", "audio": "`audio` (the sound)", "text": "`text` (the text)"}
        lead = first.get(self._media or "text", "`file_name`")
        return (f"{lead}, `id` (also the file's name), `prompt`, `negative_prompt`, `seed`, `params` (every "
                "parameter, as JSON text), `model`, `model_sha256` (the weights' SHA-256), `generator`, "
                "`generator_version`, `license` (the model's, where known), `source_file` and `source_sha256` "
                "(the input file an item was made from, if any), `batch_row` (the line or row of the batch's "
                "input it came from; 0 outside a batch).")

    def _load_example(self) -> str:
        if self.fmt == "parquet":
            return f'ds = load_dataset("parquet", data_files="{PARQUET}")'
        if self._metadata_path().name == TEXT_DATA:
            return f'ds = load_dataset("json", data_files="{TEXT_DATA}")'
        return f'ds = load_dataset("{self.fmt}", data_dir=".")'


# -- rows ------------------------------------------------------------------------------------------------------


def _normalise(row: dict[str, Any]) -> dict[str, Any]:
    """The row with every column of :data:`COLUMNS` (missing → "" or None), ``params`` as JSON text and other
    nested values as JSON text too; a bad ``id`` is a :class:`ParamError`."""
    ident = row.get("id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise ParamError("id", ident, "letters, digits, '.', '_' or '-' (it names the row's file)")
    clean: dict[str, Any] = {}
    for column in COLUMNS:
        value = row.get(column)
        if column in ("seed", "batch_row"):
            clean[column] = value if isinstance(value, int) and not isinstance(value, bool) else (
                0 if column == "batch_row" else None)
        elif column == "params":
            clean[column] = value if isinstance(value, str) else json.dumps(value or {}, ensure_ascii=False,
                                                                            sort_keys=True)
        else:
            clean[column] = "" if value is None else value if isinstance(value, str) else str(value)
    for key, value in row.items():
        if key in clean or key in ("file_name", "text"):
            continue
        clean[key] = value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(
            value, ensure_ascii=False, sort_keys=True)
    return clean


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """The whole, valid rows of a metadata file (a line cut short by a crash, or not a row, is skipped)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    rows = []
    for line in data.split(b"\n"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("id"), str) and _ID.match(row["id"]):
            rows.append(row)
    return rows


def _row_media(row: dict[str, Any]) -> str:
    name = row.get("file_name")
    return _media(Path(name).suffix) if isinstance(name, str) else "text"


def _item_index(ident: str) -> int | None:
    head = ident.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _common(rows: list[dict[str, Any]], column: str) -> Any:
    """The value of ``column`` when every row has the same (else None)."""
    values = {row.get(column) for row in rows}
    return values.pop() if len(values) == 1 else None


def _task(kind: str, generator: str, rows: list[dict[str, Any]]) -> str:
    sources = any(row.get("source_file") for row in rows)
    if kind == "image":
        return "image-to-image" if sources else "text-to-image"
    if kind == "audio":
        return "text-to-speech" if "speech" in generator or "tts" in generator else "text-to-audio"
    return "text-generation"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def _seeds(card: dict[str, Any]) -> str:
    mode, seed = card.get("seed_mode"), card.get("seed")
    text = {"fixed": "fixed: every item uses seed {seed}", "sequential": "sequential: seed {seed} + the item's index",
            "random": "random, each recorded in its row"}.get(str(mode), "")
    return text.format(seed=seed) if text else ("recorded in each row" if mode is None else str(mode))


# -- files -----------------------------------------------------------------------------------------------------


def _copy(source: Path, dest: Path) -> tuple[str, int]:
    """Copy ``source`` to ``dest`` atomically (a hidden temporary file beside it, fsync'd, renamed); returns the
    SHA-256 and size of what was copied."""
    digest, size = hashlib.sha256(), 0
    with atomic_path(dest) as tmp, open(source, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


# -- model weights ---------------------------------------------------------------------------------------------

WEIGHT_SUFFIXES = frozenset({".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".gguf", ".onnx", ".msgpack", ".h5",
                             ".pb", ".tflite"})
_LFS_BLOB = re.compile(r"^[0-9a-f]{64}$")
_hash_cache: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_hash_lock = threading.Lock()


def model_weights_hash(path: Path) -> str:
    """The SHA-256 of a model's weights: of the file for a single file; for a folder, of the lines
    ``"relpath\\tfilehash\\n"`` sorted, over its weight files (:data:`WEIGHT_SUFFIXES`; every file when it has
    none; dot files and folders skipped). A file that is a link into a Hugging Face cache's ``blobs`` folder named
    by a 64-hex LFS SHA-256 is not read: that name is its hash. Cached per path and the files' sizes and mtimes."""
    path = Path(path).expanduser()
    if path.is_file():
        files = [(path.name, path)]
    elif path.is_dir():
        every = [(p.relative_to(path).as_posix(), p) for p in sorted(path.rglob("*"))
                 if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)]
        weights = [(rel, p) for rel, p in every if p.suffix.lower() in WEIGHT_SUFFIXES]
        files = weights or every
    else:
        raise StudioloError(f"Cannot hash the model's weights: {path} is neither a file nor a folder.",
                            hint="Check that the model is installed.")
    stats = []
    for rel, p in files:
        st = p.stat()
        stats.append((rel, st.st_mtime_ns, st.st_size))
    key = (str(path.absolute()), tuple(stats))
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    hashes = {rel: _weight_file_hash(p) for rel, p in files}
    if path.is_file():
        result = hashes[path.name]
    else:
        lines = "".join(f"{rel}\t{hashes[rel]}\n" for rel in sorted(hashes))
        result = hashlib.sha256(lines.encode("utf-8")).hexdigest()
    with _hash_lock:
        _hash_cache[key] = result
    return result


def _weight_file_hash(path: Path) -> str:
    if path.is_symlink():
        target = Path(os.path.realpath(path))
        if target.parent.name == "blobs" and _LFS_BLOB.match(target.name):
            return target.name
    return file_sha256(path)


# -- gallery export --------------------------------------------------------------------------------------------


def export_items(items: list[Any], out: Path, fmt: str | None = None, *, force: bool = False,
                 card: dict[str, Any] | None = None) -> DatasetWriter:
    """Write library ``items`` (:class:`desktop.library.Item`) as a dataset in ``out`` (missing or empty, or any
    folder with ``force``: its non-hidden files are replaced), one row each, id ``item-<library id>``. They must
    be of one kind; ``fmt`` defaults to that kind's (:func:`default_format`). Raises :class:`StudioloError`."""
    from desktop.library import LibraryError

    if not items:
        raise StudioloError("No items to export.", hint="`studiolo gallery list` shows the items and their ids.")
    kinds = sorted({item.kind for item in items})
    if len(kinds) > 1:
        raise StudioloError(f"The items are of several kinds ({', '.join(kinds)}); a dataset holds one kind.",
                            hint="Export each kind into its own folder (`studiolo gallery list --kind KIND`).")
    fmt = _check_format(fmt or default_format(kinds[0]))
    for item in items:
        if not item.path.is_file():
            raise LibraryError(f"The file of item {item.id} is missing: {item.path}.",
                               hint="It was moved or deleted outside Studiolo; leave it out, or remove it from "
                                    f"the library (`studiolo gallery delete {item.id} --now`).")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise StudioloError(f"{out} is a file, not a folder.", hint="Give --out a new or empty folder.")
    if out.is_dir():
        present = [p for p in out.iterdir() if not p.name.startswith(".")]
        if present and not force:
            raise StudioloError(f"The folder {out} is not empty.",
                                hint="Give a new or empty folder, or --force to replace what it holds.")
        for child in present:
            if child.is_dir() and not child.is_symlink():
                import shutil

                shutil.rmtree(child)
            else:
                child.unlink()
    generators = {item.generator_id for item in items}
    info = {"kind": kinds[0], "total": len(items), "title": f"Studiolo gallery export ({len(items)} {kinds[0]} "
            "item(s))", "source": {"gallery_items": [item.id for item in items]},
            **({"generator": generators.pop()} if len(generators) == 1 else {}), **(card or {})}
    writer = DatasetWriter(out, fmt, card=info)
    hashes: dict[str, str] = {}
    for item in items:
        row = _item_row(item, hashes)
        if item.kind == "text" and fmt in ("jsonl", "parquet"):
            writer.add(row, text=item.path.read_text(encoding="utf-8"))
        else:
            writer.add(row, file=item.path)
    writer.finish(complete=True)
    return writer


def _item_row(item: Any, model_hashes: dict[str, str]) -> dict[str, Any]:
    metadata = item.metadata if isinstance(item.metadata, dict) else {}
    params = metadata.get("params") if isinstance(metadata.get("params"), dict) else {}
    parent = metadata.get("parent") if isinstance(metadata.get("parent"), dict) else {}
    model = item.model or ""
    if model not in model_hashes:
        model_hashes[model] = str(metadata.get("model_sha256") or "") or _local_model_hash(model)
    return {
        "id": f"item-{item.id}",
        "prompt": item.prompt or "",
        "negative_prompt": params.get("negative_prompt") or "",
        "seed": item.seed,
        "params": json.dumps(params, ensure_ascii=False, sort_keys=True),
        "model": model,
        "model_sha256": model_hashes[model],
        "generator": item.generator_id,
        "generator_version": item.generator_version or "",
        "license": str(metadata.get("license") or ""),
        "source_file": str(parent.get("path") or ""),
        "source_sha256": str(parent.get("sha256") or ""),
        "batch_row": 0,
    }


def _local_model_hash(model: str) -> str:
    """The weights hash of a model given as a local file or folder; "" for anything else (a hub id, ``demo``)."""
    if not model or model == "demo":
        return ""
    try:
        path = Path(model).expanduser()
        return model_weights_hash(path) if path.is_absolute() and path.exists() else ""
    except (OSError, StudioloError):
        return ""
