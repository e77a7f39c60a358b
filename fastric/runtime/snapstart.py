"""SnapStart: before-snapshot hooks, `/restore/next`, after-restore hooks (awslambdaric 4.2.2's sequence).

Hooks are registered by user code through `snapshot_restore_py` (`register_before_snapshot`,
`register_after_restore`); without that package no hook can exist and only `/restore/next` is called.
"""

from __future__ import annotations

import sys

from fastric.runtime import logs
from fastric.runtime.faults import describe_exception, dump_document
from fastric.runtime.wire.connection import Connection
from fastric.runtime.wire.protocol import Requests


class LambdaRuntimeClientError(Exception):
    """The Runtime API refused a SnapStart request (same name and message as awslambdaric's)."""


def _registries() -> tuple[list, list]:
    try:
        import snapshot_restore_py as hooks
    except ImportError:
        return [], []
    return hooks.get_before_snapshot(), hooks.get_after_restore()


def run_snapstart_hooks(connection: Connection, requests: Requests) -> None:
    """Run the hooks around the snapshot; exits 64 (before-snapshot) or 65 (after-restore) on failure."""
    before, after = _registries()
    try:
        while before:
            func, args, kwargs = before.pop()
            func(*args, **kwargs)
        response = connection.request(requests.restore_next)
        if response.status != 200:
            raise LambdaRuntimeClientError(
                f"Request to Lambda Runtime '/2018-06-01/runtime/restore/next' endpoint failed. "
                f"Reason: '{response.status}'. Response body: '{response.body!r}'"
            )
    except BaseException as exc:
        _report(connection, requests.init_error, exc, "Runtime.BeforeSnapshotError")
        sys.exit(64)
    connection.close()  # the snapshot's TCP connection does not survive a restore
    try:
        for func, args, kwargs in after:
            func(*args, **kwargs)
    except BaseException as exc:
        _report(connection, requests.restore_error, exc, "Runtime.AfterRestoreError")
        sys.exit(65)


def _report(connection: Connection, build, exc: BaseException, error_type: str) -> None:
    document, _ = describe_exception(exc, "")
    logs.log_error(document)
    response = connection.request(build(dump_document(document), error_type))
    if response.status != 202:
        raise LambdaRuntimeClientError(
            f"Request to Lambda Runtime failed. Reason: '{response.status}'. Response body: '{response.body!r}'"
        )
