"""The ``routerm`` command line: one front door over the pipeline's entry points (see routerm.cli)."""
