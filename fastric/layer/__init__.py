"""`fastric layer build`: a Lambda layer that runs fastric on the managed Python runtimes (zip functions).

The layer holds `python/` (fastric and its dependencies, PyPI wheels for one Python version and architecture) and
`fastric-wrapper` at its root, which `AWS_LAMBDA_EXEC_WRAPPER=/opt/fastric-wrapper` makes Lambda start the runtime
through. This package uses the standard library only (pip runs as a subprocess); the runtime never imports it.
"""
