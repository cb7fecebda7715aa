"""Ending the process at once, for the few places that must not wait for threads that may never return."""

from __future__ import annotations

import logging
import os
import sys


def exit_now(code: int, *, flush_logs: bool = True) -> None:
    """Flush the logs and the standard streams, then end the process with ``code`` without running another line
    of Python or Qt: no thread is joined and nothing is torn down around work still running (a generator stuck in
    a plugin, an import nobody waits for any more). ``flush_logs`` False from a signal handler: flushing takes the
    log handlers' locks, which the interrupted code may hold."""
    if flush_logs:
        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
