"""Running jobs: contexts, the process-wide RNG hold, and (later) queues, workers and the model cache."""
