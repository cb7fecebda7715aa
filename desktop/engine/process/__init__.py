"""Generators in worker processes: one process per generator, driven by that generator's worker thread.

Where things happen:

* :mod:`~desktop.engine.process.transfer` — how messages cross: pickles whose large arrays and images travel
  through shared memory, and the guard that keeps torch & co. out of the GUI process when they are unpickled;
* :mod:`~desktop.engine.process.child` — the worker process itself (``python -m desktop.engine.process.child``):
  imports the plugin by its entry point, loads models, runs ``generate``, sends progress, previews, warnings and
  outputs back, and exits when the GUI process is gone;
* :mod:`~desktop.engine.process.client` — :class:`WorkerProcess`, the GUI process's side of one worker process:
  starting it, the requests, the reader thread, ending it (politely, or killed), and what a death means;
* :mod:`~desktop.engine.runners` — the two ways a :class:`~desktop.engine.worker.GeneratorWorker` runs a
  generator's ``load``/``generate``: in its worker process (the default) or in this process.
"""
