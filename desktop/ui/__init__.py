"""The Qt user interface. Imported only when the window opens (never by the CLI's headless commands)."""
