"""The host's exploration tools, for every generator: X/Y/Z grids over any parameter now (:mod:`.axes` parses an
axis, :mod:`.grid` expands a grid into its cells); variations and seed/prompt interpolation later.

Nothing here imports Qt, torch or another heavy library: the CLI and the window use it directly.
"""
