"""The window's X/Y/Z grids (issue 18): set up a grid over a generator's params (:mod:`.grid_setup`), watch it fill
(:mod:`.grid_view`), save it and run a saved one again (:mod:`.grid_window`, one per generator page)."""

from desktop.ui.explore.grid_window import GridWindow

__all__ = ["GridWindow"]
