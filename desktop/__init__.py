"""Studiolo: the desktop host.

The host knows Qt, pluggy, files and SQLite; it never imports diffusers or transformers. Plugins talk to it
only through :mod:`desktop.api`.
"""

__version__ = "0.2.5"
