"""The Batch window of a generator page (issue 20): a prompt list, template or folder of inputs in, a preview and an
estimate, then the batch run through the engine into a dataset folder (:mod:`.batch_window`)."""

from desktop.ui.batch.batch_window import BatchWindow

__all__ = ["BatchWindow"]
