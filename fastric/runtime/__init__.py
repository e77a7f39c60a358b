"""The runtime: what `python -m fastric HANDLER` runs against the Lambda Runtime API.

Never imported by `fastric.emulator` (and it never imports the emulator); see docs/architecture.md.
"""
