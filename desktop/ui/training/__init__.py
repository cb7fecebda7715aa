"""The Training window of a generator page (issue 22): what to train and on which files (:mod:`.form`), the run as
it goes — steps, loss curve, estimate, samples (:mod:`.progress`) — and the window that starts, pauses, resumes and
cancels it and offers the trained model for the next generation (:mod:`.window`)."""

from desktop.ui.training.form import data_field
from desktop.ui.training.window import TrainingWindow, params_using

__all__ = ["TrainingWindow", "data_field", "params_using"]
