"""Load on real gunicorn: 16 clients posting real photos, a worker killed mid-load, memory over 5,000 requests.

Marked `load` (about five minutes; `python -m pytest -m load -s`); CI runs it. Its figures go in docs/benchmarks.md.
"""

import os
import signal
import time

import psutil
import pytest

from harness.load import run_load
from harness.paths import scene_photos
from harness.servers import run_gunicorn, server_rss_mb

pytestmark = pytest.mark.load


@pytest.fixture(scope="module")
def photos(sample_scenes_dir) -> list[bytes]:
    return [p.read_bytes() for p, _ in scene_photos(sample_scenes_dir) if p.suffix == ".jpg"]


def test_sixteen_clients_for_sixty_seconds_then_no_leak_over_5000_requests(photos, capsys):
    with run_gunicorn({"WEB_CONCURRENCY": "2"}) as (url, process):
        warm = run_load(url, photos, 16, total=500, seconds=120)
        rss_500 = server_rss_mb(process)
        steady = run_load(url, photos, 16, seconds=60)
        rest = run_load(url, photos, 16, total=max(0, 5000 - warm.requests - steady.requests), seconds=180)
        rss_5000 = server_rss_mb(process)
    with capsys.disabled():
        print(f"\n[load] 16 clients, 60 s: {steady.summary()}")
        print(f"[load] RSS of the server (master + 2 workers): {rss_500:.0f} MB after 500 requests, "
              f"{rss_5000:.0f} MB after {warm.requests + steady.requests + rest.requests} "
              f"({rss_5000 / rss_500 - 1:+.1%})")
    assert warm.failures == [] and steady.failures == [] and rest.failures == []
    assert rss_5000 <= rss_500 * 1.10  # growth is the leak; the detector's arena can also give memory back


def test_killing_a_worker_under_load_costs_each_client_at_most_its_connection(photos, capsys):
    """The requests lost are those on the killed worker's connections: at most one per client, and never an
    HTTP error. (Not a share of all requests: how many a client sends in the time depends on the machine.)"""
    with run_gunicorn({"WEB_CONCURRENCY": "2"}) as (url, process):
        run_load(url, photos, 16, total=100, seconds=60)  # warm both workers
        original = {p.pid for p in psutil.Process(process.pid).children()}

        def kill_one_worker() -> None:
            time.sleep(10)
            os.kill(min(original), signal.SIGKILL)

        result = run_load(url, photos, 16, seconds=40, during=kill_one_worker)
        replaced = {p.pid for p in psutil.Process(process.pid).children()}
    with capsys.disabled():
        print(f"\n[load] worker killed after 10 s of 40 s: {result.summary()}; "
              f"failures: {sorted(set(result.failures))}")
    assert min(original) not in replaced and len(replaced) == 2
    assert len(result.failures) <= 16
    assert all(failure.endswith("Error") for failure in result.failures), result.failures  # no 5xx answers
