"""Hook specifications: what a Studiolo plugin can implement.

Each hook is documented in ``docs/plugins.md`` and exercised by a test through a plugin installed by entry point
(``tests/test_hooks.py`` fails when one is missing either).
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from desktop.api import PROJECT_NAME, Generator

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_generators(register: Callable[[Generator], None]) -> None:
    """Register the plugin's generators: call ``register(generator)`` once per ``Generator`` instance."""
