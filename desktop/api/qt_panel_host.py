"""``QtPanelHost``: a :class:`~desktop.api.panel.PanelHost` on a ``QObject``, where the host's signals are declared
(the one declaration: the window's host and the test host both derive from it). Import it from
``desktop.api.widgets``; it imports Qt."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop.api.panel import PanelHost

__all__ = ["QtPanelHost"]


class QtPanelHost(QObject, PanelHost):
    """The base of every panel host: it declares the signals a panel follows; a subclass implements the
    :class:`~desktop.api.panel.PanelHost` methods. The window gives each generator's page one (reporting that
    generator's jobs only, whoever submitted them); ``desktop.testing.panel_host.RecordingPanelHost`` is one for
    tests. A panel needs to subclass it only to write a host of its own (a fake in a test).

    Connect the signals to your widget's slots (they run in the GUI thread), or follow your own jobs with
    :class:`~desktop.api.job_follower.JobFollower`, which filters them for you.
    """

    job_queued = Signal(str)
    """``(job_id)``: a job was queued. For a job submitted with ``submit``, emitted before ``submit`` returns."""
    job_started = Signal(str)
    """``(job_id)``: the job left the queue (its model is being loaded)."""
    job_progressed = Signal(str, int, int, str)
    """``(job_id, done, total, message)``: progress (``total`` is 0 when unknown)."""
    job_previewed = Signal(str, object)
    """``(job_id, preview)``: a PIL image, a text chunk (``str``) or an ``AudioOutput`` chunk."""
    job_finished = Signal(str, object)
    """``(job_id, outputs)``: the job's outputs (a list), saved."""
    job_failed = Signal(str, str)
    """``(job_id, message)``: the job failed; the message is for the user."""
    job_cancelled = Signal(str, object)
    """``(job_id, partial)``: the job was cancelled; ``partial`` is the list of partial outputs, possibly empty."""
    params_applied = Signal(object)
    """``(params)``: the user asked to reuse these params (from the gallery, or a file dropped on the window): show
    them in the panel. A ``Params`` instance or its JSON form (a dict)."""
