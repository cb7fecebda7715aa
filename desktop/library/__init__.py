"""The library: saving outputs as files and indexing them.

* :mod:`desktop.library.encoders` — the host's writer for outputs a generator does not encode itself (PNG with
  a ``studiolo`` metadata chunk, UTF-8 text, 16-bit WAV) and :func:`read_png_metadata` to read it back;
* :mod:`desktop.library.store` — :class:`OutputStore`, which writes encoded outputs atomically in dated folders,
  with a JSON sidecar when the file cannot carry its metadata;
* :mod:`desktop.library.db` — :class:`Library`, the SQLite index (one writer thread, futures for writes,
  a small pool of read-only connections for reads, schema migrations with a backup first, newer libraries refused
  untouched): :class:`Query` filters, full-text search, favourites, tags and the trash;
* :mod:`desktop.library.gallery` — :class:`Gallery`, items and their files together (details, export, trash,
  delete), shared by the window's gallery and ``studiolo gallery``.

No Qt and no torch here.
"""

from __future__ import annotations

from desktop.library.db import (
    SCHEMA_VERSION,
    Item,
    Library,
    LibraryClosedError,
    LibraryError,
    LibraryVersionError,
    NewItem,
    Query,
    default_library_path,
)
from desktop.library.encoders import default_encode, metadata_to_json, output_kind, read_png_metadata
from desktop.library.gallery import Gallery, ItemDetails
from desktop.library.store import OutputStore, metadata_for, sidecar_path

__all__ = [
    "SCHEMA_VERSION",
    "Gallery",
    "Item",
    "ItemDetails",
    "Library",
    "LibraryClosedError",
    "LibraryError",
    "LibraryVersionError",
    "NewItem",
    "OutputStore",
    "Query",
    "default_encode",
    "default_library_path",
    "metadata_for",
    "metadata_to_json",
    "output_kind",
    "read_png_metadata",
    "sidecar_path",
]
