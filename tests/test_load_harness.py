"""The load harness's bounds: a count of 0 is no requests, and a run with no bound is refused."""

import time

import pytest

from harness.load import run_load


def test_a_count_of_zero_sends_no_requests():
    # Port 9 (discard) on loopback: any request that slipped through would be recorded as a failure.
    result = run_load("http://127.0.0.1:9", [b""], clients=4, total=0)
    assert result.requests == 0


def test_a_time_bound_stops_the_clients_even_when_every_request_fails():
    start = time.monotonic()
    result = run_load("http://127.0.0.1:9", [b""], clients=2, seconds=0.5, total=10_000)
    assert time.monotonic() - start < 30
    assert 0 < result.requests < 10_000 and result.latencies_ms == []


def test_a_run_without_any_bound_is_refused():
    with pytest.raises(ValueError, match="needs seconds, total or both"):
        run_load("http://127.0.0.1:9", [b""], clients=1)
