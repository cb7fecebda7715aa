"""Drafts of the text panel: every document and every chat is a draft, one JSON file each, written atomically.

A draft remembers where its generated text came from (:class:`Provenance`: the span, the model, the params, the
seed and the job). Drafts export to Markdown (the provenance in a YAML front matter) or to plain text with a
``.json`` sidecar, and :func:`params_from_export` reads the params of an exported file back ("reuse parameters").

The front matter is written as YAML whose every value is a JSON scalar or flow object (all ASCII), so that any
YAML reader understands it and this module can read it back without a YAML library::

    ---
    studiolo: "text-draft"
    version: 1
    title: "The lighthouse"
    kind: "document"
    system_prompt: ""
    generations:
      - start: 12
        end: 80
        model: "gpt2"
        seed: 1234
        job_id: "job-1"
        created: 1714557600.0
        partial: false
        params: {"max_new_tokens": 200, "mode": "continue", ...}
    ---
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop.api import atomic_write_bytes, atomic_write_json, from_json, to_json
from plugins.text.params import TextParams

log = logging.getLogger(__name__)

__all__ = [
    "KINDS",
    "ROLES",
    "Draft",
    "DraftError",
    "DraftInfo",
    "DraftStore",
    "Provenance",
    "export_markdown",
    "export_text",
    "generation_from_export",
    "params_from_export",
    "sidecar_path",
    "typed_params_from_export",
]

KINDS = ("document", "chat")
ROLES = ("user", "assistant")
FORMAT = 1
EXPORT_TAG = "text-draft"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_READ_LIMIT = 4 * 1024 * 1024  # the most bytes read from an exported file (the front matter is at the top)


class DraftError(ValueError):
    """A draft is missing, or its file cannot be read as a draft (it has then been set aside)."""


@dataclass
class Provenance:
    """Where one generated piece of a draft came from.

    ``start``/``end``: for a document, the span of the generated text in ``Draft.text`` (Python string indexes,
    end exclusive; kept up to date as the text is edited); for a chat, the assistant message's index and that
    index + 1. ``params`` is the job's params as JSON (:func:`desktop.api.to_json`); ``seed`` is None when the
    host did not report it; ``partial`` marks text from a cancelled or failed job.
    """

    start: int
    end: int
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    job_id: str | None = None
    created: float = field(default_factory=time.time)
    partial: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "model": self.model, "params": self.params,
                "seed": self.seed, "job_id": self.job_id, "created": self.created, "partial": self.partial}

    @classmethod
    def from_json(cls, data: Any) -> Provenance:
        """Read one record; raises :class:`DraftError` when it is not one."""
        if not isinstance(data, Mapping):
            raise DraftError("a provenance record is not an object")
        start, end = data.get("start"), data.get("end")
        if not (_is_int(start) and _is_int(end) and 0 <= start <= end):
            raise DraftError("a provenance record has no valid span")
        params = data.get("params", {})
        seed = data.get("seed")
        created = data.get("created", 0.0)
        if not isinstance(params, Mapping) or not (seed is None or _is_int(seed)):
            raise DraftError("a provenance record has invalid params or seed")
        if not isinstance(created, (int, float)) or isinstance(created, bool) or not math.isfinite(created):
            raise DraftError("a provenance record has an invalid time")
        return cls(start=start, end=end, model=_opt_str(data.get("model")), params=dict(params), seed=seed,
                   job_id=_opt_str(data.get("job_id")), created=float(created), partial=data.get("partial") is True)


@dataclass
class Draft:
    """A document (``text``) or a chat (``messages``: ``{"role": "user"|"assistant", "content": str}``)."""

    id: str
    kind: str = "document"
    title: str = ""
    text: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    system_prompt: str = ""
    provenance: list[Provenance] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)

    @classmethod
    def new(cls, kind: str = "document", title: str = "") -> Draft:
        """An empty draft with a fresh id."""
        if kind not in KINDS:
            raise ValueError(f"unknown draft kind {kind!r}")
        return cls(id=uuid.uuid4().hex, kind=kind, title=title)

    def display_title(self) -> str:
        """The title, or one made from the first words of the text (or the first message)."""
        if self.title.strip():
            return self.title.strip()
        source = self.text if self.kind == "document" else next(
            (m["content"] for m in self.messages if m["role"] == "user"), "")
        words = " ".join(source.split())
        return (words[:40] + "…") if len(words) > 40 else words

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "id": self.id, "kind": self.kind, "title": self.title, "text": self.text,
                "messages": [dict(m) for m in self.messages], "system_prompt": self.system_prompt,
                "provenance": [p.to_json() for p in self.provenance], "created": self.created,
                "updated": self.updated}

    @classmethod
    def from_json(cls, data: Any) -> Draft:
        """Read a draft written by :meth:`to_json`; raises :class:`DraftError` for anything else (a provenance
        record that cannot be read is dropped rather than the draft refused)."""
        if not isinstance(data, Mapping):
            raise DraftError("not a JSON object")
        draft_id, kind = data.get("id"), data.get("kind")
        if not isinstance(draft_id, str) or not _ID.fullmatch(draft_id) or kind not in KINDS:
            raise DraftError("no valid id or kind")
        texts = {name: data.get(name, "") for name in ("title", "text", "system_prompt")}
        if not all(isinstance(value, str) for value in texts.values()):
            raise DraftError("title, text and system prompt must be text")
        messages = data.get("messages", [])
        if not isinstance(messages, list) or not all(
                isinstance(m, Mapping) and m.get("role") in ROLES and isinstance(m.get("content"), str)
                for m in messages):
            raise DraftError("messages must be a list of {role, content}")
        provenance = data.get("provenance", [])
        if not isinstance(provenance, list):
            raise DraftError("provenance must be a list")
        times = [data.get("created", 0.0), data.get("updated", 0.0)]
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times):
            raise DraftError("invalid times")
        return cls(id=draft_id, kind=kind, title=texts["title"], text=texts["text"],
                   messages=[{"role": m["role"], "content": m["content"]} for m in messages],
                   system_prompt=texts["system_prompt"], provenance=_valid_provenance(provenance),
                   created=float(times[0]), updated=float(times[1]))


def _valid_provenance(records: list[Any]) -> list[Provenance]:
    """The records that can be read; one that cannot is dropped (it describes the text, it is not the text)."""
    out = []
    for record in records:
        try:
            out.append(Provenance.from_json(record))
        except DraftError as exc:
            log.warning("dropping a provenance record: %s", exc)
    return out


@dataclass(frozen=True)
class DraftInfo:
    """One row of :meth:`DraftStore.list`. A ``damaged`` draft could not be read: its file was set aside
    (``path``, ending in ``.corrupt``) and it can only be deleted."""

    id: str
    title: str
    kind: str
    updated: float
    damaged: bool = False
    path: Path | None = None


class DraftStore:
    """Drafts kept as ``<directory>/<id>.json`` (created on first save)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, draft_id: str) -> Path:
        """The file of a draft; raises :class:`DraftError` for an id that is not a plain name."""
        if not isinstance(draft_id, str) or not _ID.fullmatch(draft_id):
            raise DraftError(f"not a draft id: {draft_id!r}")
        return self.directory / f"{draft_id}.json"

    def save(self, draft: Draft, *, touch: bool = True) -> None:
        """Write the draft atomically (``touch``: set ``updated`` to now first). A failure leaves the file as it
        was and raises ``OSError``."""
        path = self.path(draft.id)
        if touch:
            draft.updated = max(time.time(), draft.updated)
        atomic_write_json(path, draft.to_json())

    def load(self, draft_id: str) -> Draft:
        """Read a draft. A missing one raises :class:`DraftError`; so does a damaged one, after setting it
        aside."""
        path = self.path(draft_id)
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise DraftError(f"no draft {draft_id}") from None
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            self._set_aside(path, exc)
            raise DraftError(f"draft {draft_id} is damaged: {exc}") from None
        try:
            draft = Draft.from_json(data)
            if draft.id != draft_id:
                raise DraftError("the id inside does not match the file name")
        except DraftError as exc:
            self._set_aside(path, exc)
            raise DraftError(f"draft {draft_id} is damaged: {exc}") from None
        return draft

    def list(self) -> builtins.list[DraftInfo]:
        """Every draft, newest first; damaged ones (set aside now or earlier) come last. Never raises for a bad
        file."""
        infos: builtins.list[DraftInfo] = []
        try:
            entries = sorted(self.directory.iterdir()) if self.directory.is_dir() else []
        except OSError as exc:
            log.warning("cannot list drafts in %s: %s", self.directory, exc)
            return []
        for entry in entries:
            if entry.suffix == ".json" and _ID.fullmatch(entry.stem):
                try:
                    draft = self.load(entry.stem)
                except DraftError:
                    continue  # set aside: listed below with the other damaged files
                infos.append(DraftInfo(draft.id, draft.display_title(), draft.kind, draft.updated))
        damaged = []
        for entry in sorted(self.directory.glob("*.corrupt")) if self.directory.is_dir() else []:
            try:
                updated = entry.stat().st_mtime
            except OSError:
                continue
            damaged.append(DraftInfo(entry.name, entry.name, "", updated, damaged=True, path=entry))
        infos.sort(key=lambda info: (info.updated, info.id), reverse=True)
        return infos + damaged

    def delete(self, draft_id: str) -> None:
        """Remove a draft, or a damaged draft's set-aside file (its ``DraftInfo.id``). No error if absent."""
        if draft_id.endswith(".corrupt") and "/" not in draft_id and "\\" not in draft_id and \
                _ID.fullmatch(draft_id.split(".", 1)[0]):
            path = self.directory / draft_id
        else:
            path = self.path(draft_id)
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def _set_aside(self, path: Path, reason: object) -> None:
        target = path.with_name(path.name + ".corrupt")
        n = 1
        while target.exists():
            target = path.with_name(f"{path.name}.{n}.corrupt")
            n += 1
        log.warning("draft %s is damaged (%s); set aside as %s", path, reason, target.name)
        try:
            os.replace(path, target)
        except OSError as exc:
            log.warning("could not set %s aside: %s", path, exc)


# ------------------------------------------------------------------------------------------------- export


def sidecar_path(path: Path) -> Path:
    """The ``.json`` beside an exported ``.txt``."""
    return Path(path).with_suffix(".json")


def _generations(draft: Draft) -> list[dict[str, Any]]:
    return [p.to_json() for p in draft.provenance]


def _header(draft: Draft) -> dict[str, Any]:
    return {"studiolo": EXPORT_TAG, "version": FORMAT, "title": draft.display_title(), "kind": draft.kind,
            "system_prompt": draft.system_prompt}


def _body(draft: Draft, *, markdown: bool) -> str:
    if draft.kind == "document":
        return draft.text
    names = {"user": "You", "assistant": "Assistant"}
    parts = []
    if draft.system_prompt:
        parts.append(f"**System:** {draft.system_prompt}" if markdown else f"System: {draft.system_prompt}")
    for message in draft.messages:
        name = names.get(message["role"], message["role"])
        parts.append(f"**{name}:**\n\n{message['content']}" if markdown else f"{name}: {message['content']}")
    return "\n\n".join(parts) + "\n"


def export_markdown(draft: Draft, path: Path) -> None:
    """Write the draft as Markdown with a YAML front matter holding the provenance (atomically)."""
    dump = json.dumps
    lines = ["---"] + [f"{key}: {dump(value)}" for key, value in _header(draft).items()]
    lines.append("generations:" if draft.provenance else "generations: []")
    for generation in _generations(draft):
        items = list(generation.items())
        for index, (key, value) in enumerate(items):
            lines.append(("  - " if index == 0 else "    ") + f"{key}: {dump(value, sort_keys=True)}")
    lines.append("---")
    text = "\n".join(lines) + "\n\n" + _body(draft, markdown=True)
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def export_text(draft: Draft, path: Path) -> Path:
    """Write the draft as plain text plus a ``.json`` sidecar with the provenance; returns the sidecar's path."""
    path = Path(path)
    atomic_write_bytes(path, _body(draft, markdown=False).encode("utf-8"))
    sidecar = sidecar_path(path)
    atomic_write_json(sidecar, {**_header(draft), "file": path.name, "generations": _generations(draft)})
    return sidecar


def params_from_export(path: Path) -> tuple[dict[str, Any], int | None] | None:
    """The params (valid :class:`TextParams` as JSON) and seed of the last generation recorded in an exported
    ``.md`` (front matter) or ``.txt`` (its sidecar; the ``.json`` itself is accepted too). ``None`` when the file
    records none or is not an export — never raises for what a file holds."""
    found = generation_from_export(path)
    return None if found is None else (found.params, found.seed)


def typed_params_from_export(params_type: type, path: Path) -> Any | None:
    """The params of the last generation recorded in an exported draft as a ``params_type`` instance (a text
    generator's ``Params``), or None — for ``Generator.params_from_file``. Never raises, whatever the file holds."""
    try:
        found = params_from_export(path)
        return None if found is None else from_json(params_type, found[0])
    except Exception:  # hostile files: no params, never an error
        return None


def generation_from_export(path: Path) -> Provenance | None:
    """The last generation recorded in an exported draft (see :func:`params_from_export`), with its model: what
    "reuse" needs to make it again. Its span is meaningless here (0, 0). Never raises for what a file holds."""
    try:
        path = Path(path)
        if path.suffix.lower() == ".txt":
            path = sidecar_path(path)
        raw = _read_limited(path)
        if raw is None:
            return None
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
            generations = data.get("generations") if isinstance(data, dict) else None
        else:
            generations = _front_matter_generations(raw.decode("utf-8", errors="replace"))
        return _last_generation(generations)
    except (OSError, ValueError, RecursionError, TypeError):  # decode errors are ValueErrors
        return None


def _read_limited(path: Path) -> bytes | None:
    if not path.is_file():  # also refuses FIFOs and devices, which would block or never end
        return None
    with path.open("rb") as f:
        data = f.read(_READ_LIMIT + 1)
    if path.suffix.lower() == ".json" and len(data) > _READ_LIMIT:
        return None
    return data[:_READ_LIMIT]


def _front_matter_generations(text: str) -> list[dict[str, Any]] | None:
    """The ``generations`` list of the front matter this module writes (``None`` if there is none)."""
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    top: dict[str, Any] = {}
    generations: list[dict[str, Any]] = []
    for line in lines[1:]:
        if line.strip() == "---":
            break
        match = re.fullmatch(r"( *)(- )?([A-Za-z_]+):(?: (.*))?", line)
        if match is None:
            continue
        indent, dash, key, value = match.groups()
        parsed = json.loads(value) if value not in (None, "") else None
        if dash:
            generations.append({key: parsed})
        elif indent and generations:
            generations[-1][key] = parsed
        elif not indent:
            top[key] = parsed
    else:
        return None  # the front matter never ends
    if top.get("studiolo") != EXPORT_TAG:
        return None
    return generations


def _last_generation(generations: Any) -> Provenance | None:
    if not isinstance(generations, list):
        return None
    for generation in reversed(generations):
        if not isinstance(generation, dict) or not isinstance(generation.get("params"), dict):
            continue
        try:
            params = to_json(from_json(TextParams, generation["params"]))
        except ValueError:  # ParamError
            continue
        seed, model = generation.get("seed"), generation.get("model")
        return Provenance(0, 0, model=model if isinstance(model, str) and model.strip() else None, params=params,
                          seed=seed if _is_int(seed) and 0 <= seed < 2**63 else None)
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
