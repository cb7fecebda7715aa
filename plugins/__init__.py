"""Built-in generators. Each is a plugin registered through the `studiolo` entry-point group, exactly like a
third-party one, and imports nothing from the host but `desktop.api`."""
