"""The request watchdog finds requests over the limit and answers them 503 on their own socket; under real
gunicorn the worker is then replaced and the server keeps serving."""

import json
import socket
import time
from types import SimpleNamespace

import pytest

from harness.servers import run_gunicorn
from tests.support import assert_still_serving, post_request, raw_http
from web.watchdog import RequestWatchdog, answer_overdue


@pytest.fixture(scope="module")
def photo(one_face_photo) -> bytes:
    return one_face_photo[0].read_bytes()


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


def test_a_request_over_the_time_limit_gets_a_503_and_the_server_recovers(tmp_path, photo):
    log_path = tmp_path / "server.log"
    env = {"WEB_CONCURRENCY": "2", "REQUEST_TIMEOUT": "2"}
    with run_gunicorn(env, log_path) as (url, _):
        # A body that stops half way: the worker thread waits on it, as on a hung native call.
        request = post_request("/api/detect", "image/jpeg", photo[:1000], f"Content-Length: {len(photo)}\r\n")
        started = time.monotonic()
        status, headers, body = raw_http(url, request, timeout=30)
        took = time.monotonic() - started
        assert status == 503 and b'"timeout"' in body and headers["Retry-After"] == "5"
        assert 2 <= took < 10
        assert_still_serving(url, photo)
    assert "ran over REQUEST_TIMEOUT" in log_path.read_text(errors="replace")
