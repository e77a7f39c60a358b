"""fastric's internal extension client (`fastric.runtime.wire.extension`) against the Extensions API on 127.0.0.1:
exact request bytes, registration answers, and the parked `event/next`."""

from __future__ import annotations

import json
import socket
import sys

import pytest
from lambda_api import EVENT_NEXT, IDENTIFIER, REGISTER, LambdaAPIServer

from fastric.runtime.wire import extension
from fastric.runtime.wire.connection import Connection


def test_register_request_bytes(monkeypatch):
    py = "%d.%d.%d" % sys.version_info[:3]
    head, body = extension.register_request("127.0.0.1:9001")
    assert head == (
        b"POST /2020-01-01/extension/register HTTP/1.1\r\n"
        b"Host: 127.0.0.1:9001\r\n"
        b"User-Agent: aws-lambda-python/" + py.encode() + b" fastric/0.1.0\r\n"
        b"Lambda-Extension-Name: fastric-shutdown-hooks\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: 13\r\n\r\n"
    )
    assert json.loads(body) == {"events": []}


def test_event_next_request_bytes():
    (head,) = extension.next_event_request("127.0.0.1:9001", IDENTIFIER)
    assert head.startswith(b"GET /2020-01-01/extension/event/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n")
    assert head.endswith(b"Lambda-Extension-Identifier: " + IDENTIFIER.encode() + b"\r\n\r\n")


def test_register_returns_the_identifier():
    with LambdaAPIServer() as srv:
        connection = Connection(srv.address)
        try:
            assert extension.register(connection, srv.address) == IDENTIFIER
        finally:
            connection.close()
    (request,) = srv.requests
    assert request.path == REGISTER and request.header("lambda-extension-name") == "fastric-shutdown-hooks"


@pytest.mark.parametrize("status", [403, 404, 500])
def test_a_refused_registration_raises_with_the_status(status):
    with LambdaAPIServer(register_status=status) as srv:
        connection = Connection(srv.address)
        with pytest.raises(extension.ExtensionError, match=f"Http response code: {status}"):
            extension.register(connection, srv.address)
        connection.close()


@pytest.mark.parametrize("identifier", ["", "bad id", "x\x7f"])
def test_an_identifier_that_cannot_go_back_in_a_header_is_refused(identifier):
    respond = lambda request: (200, {"Lambda-Extension-Identifier": identifier}, b"{}")
    with LambdaAPIServer() as srv:
        srv.respond = respond
        connection = Connection(srv.address)
        with pytest.raises(extension.ExtensionError, match="Lambda-Extension-Identifier"):
            extension.register(connection, srv.address)
        connection.close()


def test_an_absent_extensions_api_raises():
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % unused.getsockname()[1]
    with pytest.raises(extension.ExtensionError, match="cannot be reached"):
        extension.register(Connection(address), address)


def test_the_parked_event_next_is_sent_again_once_after_a_lost_connection(capfd):
    """A SnapStart restore (or a dropped connection) loses the parked request: it is sent again on a new one."""
    seen = []

    def respond(request):
        seen.append(request.path)
        if request.path == EVENT_NEXT:
            return "drop" if len(seen) == 1 else (403, {}, b'{"errorType":"Extension.Test"}')
        return None

    with LambdaAPIServer() as srv:
        srv.respond = respond
        extension.wait_for_events(Connection(srv.address), srv.address, IDENTIFIER)
    assert seen == [EVENT_NEXT, EVENT_NEXT]
    assert "Extension fastric-shutdown-hooks: event/next answered 403" in capfd.readouterr().out


def test_a_shutdown_event_ends_the_wait():
    respond = lambda request: (200, {}, b'{"eventType":"SHUTDOWN","shutdownReason":"spindown","deadlineMs":1}')
    with LambdaAPIServer() as srv:
        srv.respond = respond
        extension.wait_for_events(Connection(srv.address), srv.address, IDENTIFIER)
    assert [r.path for r in srv.requests] == [EVENT_NEXT]


def test_the_parking_thread_is_a_daemon():
    with LambdaAPIServer() as srv:
        connection = Connection(srv.address)
        thread = extension.park_in_background(connection, srv.address, IDENTIFIER)
        assert thread.daemon
        assert srv.wait_for(lambda reqs: [r.path for r in reqs] == [EVENT_NEXT])
    thread.join(5)
    connection.close()
