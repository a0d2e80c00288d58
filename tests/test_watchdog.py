"""The request watchdog finds requests over the limit and answers them 503 on their own socket."""

import json
import socket
from types import SimpleNamespace

from web.watchdog import RequestWatchdog, answer_overdue


def test_only_requests_over_the_limit_and_still_in_flight_are_overdue():
    now = [100.0]
    watchdog = RequestWatchdog(60, clock=lambda: now[0])
    slow, quick, done = object(), object(), object()
    watchdog.started(slow)
    now[0] += 30
    watchdog.started(quick)
    watchdog.started(done)
    watchdog.finished(done)
    assert watchdog.overdue() == []
    now[0] += 31
    assert watchdog.overdue() == [slow]
    watchdog.finished(slow)
    now[0] += 60
    assert watchdog.overdue() == [quick]


def test_an_overdue_request_gets_a_json_503_and_its_socket_is_shut():
    server_side, client_side = socket.socketpair()
    with server_side, client_side:
        answer_overdue(SimpleNamespace(unreader=SimpleNamespace(sock=server_side)))
        client_side.settimeout(5)
        received = b""
        while chunk := client_side.recv(4096):
            received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 503 ") and b"Connection: close" in head
    assert json.loads(body)["error"]["code"] == "timeout"


def test_a_request_whose_client_is_gone_is_passed_over():
    server_side, client_side = socket.socketpair()
    client_side.close()
    with server_side:
        answer_overdue(SimpleNamespace(unreader=SimpleNamespace(sock=server_side)))  # no exception
    answer_overdue(SimpleNamespace())  # no socket at all
