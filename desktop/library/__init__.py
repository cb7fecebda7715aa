"""The library: saving outputs as files and indexing them.

* :mod:`desktop.library.encoders` — the host's writer for outputs a generator does not encode itself (PNG with
  a ``studiolo`` metadata chunk, UTF-8 text, 16-bit WAV) and :func:`read_png_metadata` to read it back;
* :mod:`desktop.library.store` — :class:`OutputStore`, which writes encoded outputs atomically in dated folders,
  with a JSON sidecar when the file cannot carry its metadata;
* :mod:`desktop.library.db` — :class:`Library`, the SQLite index (one writer thread, futures for writes,
  a small pool of read-only connections for reads, schema migrations with a backup first, newer libraries refused
  untouched): :class:`Query` filters, full-text search, favourites, tags and the trash;
* :mod:`desktop.library.gallery` — :class:`Gallery`, items and their files together (details with the chain of
  refinements, export, trash, delete), shared by the window's gallery and ``studiolo gallery``;
* :mod:`desktop.library.lineage` — :func:`file_sha256` and :func:`input_parent`, which find the library item a
  job's input file is (by path or by bytes) so that its outputs record their parent;
* :mod:`desktop.library.saving` — :class:`OutputSaver`, a file and its row together or neither (what a job's
  worker saves through);
* :mod:`desktop.library.reconciliation` — :func:`reconcile`, which tidies what a killed save left (temporary files,
  outputs without a row, orphan sidecars) when the window starts and before ``studiolo gallery`` commands;
* :mod:`desktop.library.embedded` — :func:`read_embedded_metadata`, the metadata a PNG, WAV or FLAC file carries.

No Qt and no torch here.
"""

from __future__ import annotations

from desktop.library.db import (
    SCHEMA_VERSION,
    Item,
    Library,
    LibraryBusyError,
    LibraryClosedError,
    LibraryError,
    LibraryVersionError,
    NewItem,
    Query,
    default_library_path,
)
from desktop.library.embedded import read_embedded_metadata
from desktop.library.encoders import default_encode, metadata_to_json, output_kind, read_png_metadata
from desktop.library.gallery import Gallery, ItemDetails, ParentLink, Recipe
from desktop.library.reconciliation import RECOVERED_TAG, ReconcileReport, reconcile
from desktop.library.saving import OutputSaver, SavedOutput
from desktop.library.store import OutputStore, metadata_for, sidecar_path

__all__ = [
    "RECOVERED_TAG",
    "SCHEMA_VERSION",
    "Gallery",
    "Item",
    "ItemDetails",
    "Library",
    "LibraryClosedError",
    "LibraryBusyError",
    "LibraryError",
    "LibraryVersionError",
    "NewItem",
    "OutputSaver",
    "OutputStore",
    "ParentLink",
    "Query",
    "Recipe",
    "ReconcileReport",
    "SavedOutput",
    "default_encode",
    "default_library_path",
    "metadata_for",
    "metadata_to_json",
    "output_kind",
    "read_embedded_metadata",
    "read_png_metadata",
    "reconcile",
    "sidecar_path",
]
