"""The Gallery page: one view of everything Studiolo has made, across all generators, newest first.

Structure (each module has one job):

* :mod:`~desktop.ui.gallery.view` — :class:`GalleryView`, the page: filter bar, toolbar, tile grid, details pane,
  status line with Undo; every action (open, play, show in folder, copy, save as, favourite, tags, trash with
  undo, empty trash, remove a missing item, reuse parameters, drag out). Public API for the window:
  ``GalleryView(gallery, parent)``, ``reuse_requested(generator_id, params_dict)``, ``message(text, is_error)``,
  ``refresh()``, ``item_count()``.
* :mod:`~desktop.ui.gallery.model` — :class:`GalleryModel`, a lazy ``QAbstractListModel``: it knows the query's
  total count and loads pages of ~200 items when a view first asks for one of their rows; thumbnails are asked
  for from ``data()``, so only for the rows being painted.
* every library query and write (through :class:`~desktop.library.gallery.Gallery` and the library's futures) and
  every file read runs on the ``library`` pool of :mod:`desktop.ui.tasks` (one thread, in order); results come back
  to callbacks on the GUI thread.
* :mod:`~desktop.ui.gallery.thumbnails` — rendering tiles (scaled image decode, text excerpt, audio waveform,
  broken/missing/generic tiles) on the ``thumbnails`` task pool, cached on disk under
  ``<cache dir>/thumbnails`` (keyed by path, size and mtime) and in a small in-memory LRU.
* :mod:`~desktop.ui.gallery.delegate` — :class:`TileDelegate`, painting a tile (thumbnail or placeholder, ★, ⚠,
  title, kind and date).
* :mod:`~desktop.ui.gallery.details` — :class:`DetailsPane`: preview, prompt, the full metadata as a tree, tags,
  favourite, the file and whether it exists.
* :mod:`~desktop.ui.gallery.filters` — :class:`FilterBar`: search (debounced), kind, generator, model, dates,
  favourites, trash; turned into a library ``Query``.
* :mod:`~desktop.ui.gallery.player` — :class:`AudioPlayer`, QtMultimedia loaded on first use (the gallery opens
  the file instead where it cannot load).

The GUI thread never runs a query, reads a file or decodes an image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop.ui.gallery.view import GalleryView

__all__ = ["GalleryView"]


def __getattr__(name: str) -> Any:
    """``GalleryView`` on first use: the window imports this package at start, which must not import the view,
    its thumbnails and numpy (half a second) before the gallery is opened."""
    if name == "GalleryView":
        from desktop.ui.gallery.view import GalleryView

        return GalleryView
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
