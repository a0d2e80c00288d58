"""The front's per-client limits and its private /metrics, through deploy/run-local.sh: real nginx before two real
gunicorn instances on loopback. Clients come from three loopback addresses, each another client to nginx; a low
rate (2 requests/s, a burst of 3) and 2 connections per client make the limits quick to reach."""

import http.client
import json
import socket
import time

import pytest

from harness.servers import NGINX, run_front

pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")

RATE, BURST, CONNECTIONS = 2, 3, 2


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    env = {"RATE_PER_CLIENT": f"{RATE}r/s", "RATE_BURST": str(BURST), "CONN_PER_CLIENT": str(CONNECTIONS)}
    with run_front(2, tmp_path_factory.mktemp("front") / "front.log", env) as running:
        yield running


def get(port: int, path: str, client: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(client, 0))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_a_client_over_its_rate_gets_json_429s_and_other_clients_do_not(front):
    time.sleep(BURST / RATE + 0.5)  # whatever start-up sent from 127.0.0.1 has drained
    answers = [get(front.port, "/api/model") for _ in range(12)]
    statuses = [status for status, _, _ in answers]
    assert statuses[: BURST + 1] == [200] * (BURST + 1), statuses  # one request, then the burst, at once
    assert statuses.count(429) >= 6, statuses  # the rest arrived within a fraction of a second
    for status, headers, body in answers:
        if status == 429:
            assert headers["Content-Type"] == "application/json" and headers["Retry-After"] == "1"
            assert json.loads(body)["error"]["code"] == "rate_limited"
    assert get(front.port, "/api/model", client="127.0.0.2")[0] == 200  # another address has its own allowance
    time.sleep(1.5 / RATE)
    assert get(front.port, "/api/model")[0] == 200  # and the first one its allowance back


def test_too_many_connections_still_say_so(front):
    """Two uploads whose bodies stall hold this client's two connections; a third request gets the connection
    limit's 429, not the rate limit's."""
    stalled = []
    try:
        for _ in range(CONNECTIONS):
            sock = socket.create_connection(("127.0.0.1", front.port), timeout=10, source_address=("127.0.0.3", 0))
            sock.sendall(b"POST /api/detect HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n"
                         b"Content-Length: 100000\r\n\r\n" + b"\xff" * 100)
            stalled.append(sock)
        time.sleep(0.5)  # nginx has read both headers
        status, headers, body = get(front.port, "/api/model", client="127.0.0.3")
    finally:
        for sock in stalled:
            sock.close()
    assert status == 429 and headers["Content-Type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "too_many_connections"


def test_metrics_are_private_to_the_front_and_served_by_each_instance(front):
    status, headers, body = get(front.port, "/metrics", client="127.0.0.4")
    assert status == 404 and json.loads(body)["error"]["code"] == "not_found"
    status, headers, body = get(front.app_ports[0], "/metrics")  # what the operator's Prometheus scrapes
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    assert b'mask_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}' in body
