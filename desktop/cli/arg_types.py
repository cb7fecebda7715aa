"""Argument types the commands share (``type=`` of ``add_argument``): a clear usage error for a bad value."""

from __future__ import annotations

import argparse


def whole_number(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value
