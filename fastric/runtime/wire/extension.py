"""fastric's internal extension on the Lambda Extensions API: registered only so that Lambda sends SIGTERM.

Lambda sends SIGTERM at shutdown only to a runtime with a registered extension. fastric registers one inside
the runtime process (`register`, during init, before the first `/next`), subscribed to no events, and parks it
on `GET /event/next` on a connection of its own, read by a daemon thread (`park_in_background`): the hot loop's
connection is never touched, and the thread never keeps the process alive.
"""

from __future__ import annotations

import threading

from fastric.runtime.logs import runtime_log
from fastric.runtime.wire.connection import Connection, ConnectionLost
from fastric.runtime.wire.parser import MalformedResponse
from fastric.runtime.wire.protocol import USER_AGENT, Request

NAME = "fastric-shutdown-hooks"
BASE = b"/2020-01-01/extension"
REGISTER_BODY = b'{"events":[]}'


class ExtensionError(Exception):
    """The Extensions API refused the registration, or cannot be reached."""


def register_request(address: str, name: str = NAME) -> Request:
    """`POST /2020-01-01/extension/register` for an internal extension subscribed to no events."""
    head = (
        b"POST " + BASE + b"/register HTTP/1.1\r\n"
        b"Host: " + address.encode("latin-1") + b"\r\n"
        b"User-Agent: " + USER_AGENT.encode("latin-1") + b"\r\n"
        b"Lambda-Extension-Name: " + name.encode("ascii") + b"\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(REGISTER_BODY)).encode() + b"\r\n\r\n"
    )
    return [head, REGISTER_BODY]


def next_event_request(address: str, identifier: str) -> Request:
    """`GET /2020-01-01/extension/event/next` for the extension `identifier`."""
    return [
        b"GET " + BASE + b"/event/next HTTP/1.1\r\n"
        b"Host: " + address.encode("latin-1") + b"\r\n"
        b"User-Agent: " + USER_AGENT.encode("latin-1") + b"\r\n"
        b"Lambda-Extension-Identifier: " + identifier.encode("ascii") + b"\r\n\r\n"
    ]


def is_header_safe(value: str) -> bool:
    """True for a non-empty value of visible ASCII characters (safe to send back in a header)."""
    return bool(value) and all("!" <= c <= "~" for c in value)


def register(connection: Connection, address: str, name: str = NAME) -> str:
    """Register the extension; its `Lambda-Extension-Identifier`. ExtensionError if Lambda refuses it."""
    try:
        response = connection.request(register_request(address, name))
    except (ConnectionLost, MalformedResponse) as exc:
        raise ExtensionError(f"the Extensions API cannot be reached ({exc})") from None
    if response.status != 200:
        body = response.body[:200].decode("utf-8", "replace")
        raise ExtensionError(f"Http response code: {response.status}. {body}".rstrip())
    identifier = response.headers.get(b"lambda-extension-identifier", b"").strip().decode("latin-1")
    if not is_header_safe(identifier):
        raise ExtensionError(f"no usable Lambda-Extension-Identifier in the answer ({identifier!r})")
    return identifier


def wait_for_events(connection: Connection, address: str, identifier: str) -> None:
    """Ask for the next event, for ever: Lambda holds the request (the extension is subscribed to nothing).

    Returns, after logging a line, when the Extensions API refuses the request or cannot be reached again."""
    request = next_event_request(address, identifier)
    while True:
        try:
            response = connection.request(request)  # a lost connection (a SnapStart restore) is re-opened once
        except (ConnectionLost, MalformedResponse) as exc:
            runtime_log(f"Extension {NAME}: event/next failed ({exc}); shutdown hooks still run on SIGTERM")
            return
        if response.status != 200:
            runtime_log(f"Extension {NAME}: event/next answered {response.status}; shutdown hooks still run on SIGTERM")
            return
        if b'"SHUTDOWN"' in response.body:
            return


def park_in_background(connection: Connection, address: str, identifier: str) -> threading.Thread:
    """Run `wait_for_events` on a daemon thread (it never keeps the process alive); the thread."""
    thread = threading.Thread(
        target=wait_for_events, args=(connection, address, identifier), name="fastric-extension", daemon=True
    )
    thread.start()
    return thread
