"""Batch runs for any generator: prompt lists, templates or folders in, a resumable run, a dataset out."""
