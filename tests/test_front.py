"""The production front, as deploy/run-local.sh runs it: real nginx before two real gunicorn instances, on loopback.

Marked `load` (about four minutes; CI runs them). Slow clients come from 127.0.0.2 and normal ones from 127.0.0.1,
both loopback, so that the per-client connection cap applies to the attacker alone, as it would in production.
The normal clients stand for many: their address gets no request-rate limit here (tests/test_front_limits.py
tests that limit).
Every loop stops on time. The figures are printed for docs/deploy.md.
"""

import os
import socket
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import psutil
import pytest

from harness.load import run_load
from harness.paths import scene_photos
from harness.servers import NGINX, Front, cpu_seconds, run_front, wait_ready

pytestmark = [pytest.mark.load,
              pytest.mark.skipif(NGINX is None, reason="nginx is not installed (apt-get install nginx)")]

ATTACKER = "127.0.0.2"  # another loopback address: the attacker is another client to nginx
MANY_CLIENTS = {"RATE_PER_CLIENT": "10000r/s"}  # 127.0.0.1's load stands for many clients' (docstring)


@pytest.fixture(scope="module")
def photos(sample_scenes_dir) -> list[bytes]:
    return [p.read_bytes() for p, _ in scene_photos(sample_scenes_dir) if p.suffix == ".jpg"]


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    with run_front(2, tmp_path_factory.mktemp("front") / "front.log", MANY_CLIENTS) as running:
        yield running


@dataclass
class Attack:
    """Slow-header and stalled-body sockets from another address, kept open (reopened when nginx cuts them)."""

    port: int
    slow_headers: int
    stalled_bodies: int
    seconds: float
    reopened: dict[str, int] = field(default_factory=lambda: {"header": 0, "body": 0})

    def _connect(self, first_bytes: bytes) -> socket.socket:
        sock = socket.socket()
        sock.bind((ATTACKER, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", self.port))
        sock.sendall(first_bytes)
        sock.setblocking(False)
        return sock

    def _header_start(self) -> bytes:
        return b"POST /api/detect HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n"

    def _stalled_start(self) -> bytes:  # headers, then 1 kB of a 1 MB body, then nothing
        return (b"POST /api/detect HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 1000000\r\n\r\n" + b"\xff" * 1024)

    def run(self) -> None:
        deadline = time.monotonic() + self.seconds
        headers = [self._connect(self._header_start()) for _ in range(self.slow_headers)]
        bodies = [self._connect(self._stalled_start()) for _ in range(self.stalled_bodies)]
        while time.monotonic() < deadline:
            for i, sock in enumerate(headers):  # one more header line every 1.5 s
                try:
                    sock.sendall(b"X-Slow-%d: %f\r\n" % (i, time.monotonic()))
                except OSError:
                    sock.close()
                    headers[i] = self._connect(self._header_start())
                    self.reopened["header"] += 1
            for i, sock in enumerate(bodies):  # a stalled body that nginx gave up on is opened again
                try:
                    sock.recv(4096)  # anything at all, an answer or the close, means nginx is done with it
                except BlockingIOError:
                    continue
                except OSError:
                    pass
                sock.close()
                bodies[i] = self._connect(self._stalled_start())
                self.reopened["body"] += 1
            time.sleep(1.5)
        for sock in headers + bodies:
            sock.close()


def test_slow_and_stalled_clients_do_not_slow_down_normal_requests(front, photos, capsys):
    unloaded = run_load(front.url, photos, 4, seconds=20)
    attack = Attack(front.port, slow_headers=20, stalled_bodies=8, seconds=34)
    attacker = threading.Thread(target=attack.run)
    attacker.start()
    time.sleep(2)  # every attacking socket is open
    loaded = run_load(front.url, photos, 4, seconds=30)
    attacker.join(timeout=60)
    p95_unloaded, p95_loaded = np.percentile(unloaded.latencies_ms, 95), np.percentile(loaded.latencies_ms, 95)
    with capsys.disabled():
        print(f"\n[front] 4 clients through nginx, unloaded: {unloaded.summary()}")
        print(f"[front] the same with 20 slow-header + 8 stalled-body sockets open: {loaded.summary()}")
        print(f"[front] p95 {p95_loaded:.0f} ms against {p95_unloaded:.0f} ms unloaded "
              f"({p95_loaded / p95_unloaded:.2f}x); sockets nginx cut and the attacker reopened: {attack.reopened}")
    assert unloaded.failures == [] and loaded.failures == [], loaded.failures[:5]
    assert attack.reopened["body"] >= 8  # nginx's client_body_timeout cut every stalled body at least once


def test_killing_one_instance_under_load_fails_at_most_its_requests_in_flight(front, photos, capsys):
    run_load(front.url, photos, 16, total=64)  # warm both instances
    victim = front.app_ports[0]
    killed_at = []

    def kill_one_instance() -> None:
        started = time.monotonic()
        time.sleep(10)
        processes = front.instance(victim)
        for process in processes:
            process.kill()
        killed_at.append(time.monotonic() - started)
        assert processes, "no instance to kill"

    result = run_load(front.url, photos, 16, seconds=40, during=kill_one_instance)
    # deploy/run-local.sh starts the instance again; it must rejoin and serve.
    wait_ready(f"http://127.0.0.1:{victim}", timeout=120)
    cpu_before = cpu_seconds(front.instance(victim))
    time.sleep(6)  # nginx's fail_timeout (5 s) has passed: the instance is back in rotation
    after = run_load(front.url, photos, 16, seconds=15)
    cpu_served = cpu_seconds(front.instance(victim)) - cpu_before
    late = [t for t in result.failure_times if t > killed_at[0] + 1]
    with capsys.disabled():
        print(f"\n[front] one of two instances SIGKILLed after {killed_at[0]:.0f} s of 40 s, 16 clients: "
              f"{result.summary()}; failures: {sorted(set(result.failures))} "
              f"at {[round(t, 1) for t in result.failure_times]} s")
        print(f"[front] after it restarted: {after.summary()}; its workers used {cpu_served:.1f} s of CPU")
    assert len(result.failures) <= 0.01 * result.requests
    assert late == []  # none once nginx has marked it down
    assert after.failures == [] and cpu_served > 1.0  # it rejoined and took its share


def nginx_processes(front: Front) -> list[psutil.Process]:
    return [p for p in psutil.Process(front.process.pid).children(recursive=True) if p.name() == "nginx"]


def measured(url: str, photos: list[bytes], front: Front, seconds: float = 15) -> dict[str, float]:
    psutil.cpu_percent()
    nginx_before = cpu_seconds(nginx_processes(front))
    result = run_load(url, photos, 16, seconds=seconds)
    machine = psutil.cpu_percent()
    assert result.failures == []
    return {"requests": len(result.latencies_ms), "seconds": result.seconds, "cpu": machine * result.seconds,
            "nginx": cpu_seconds(nginx_processes(front)) - nginx_before,
            "p95": float(np.percentile(result.latencies_ms, 95))}


def line(name: str, runs: list[dict[str, float]]) -> tuple[str, float]:
    seconds = sum(r["seconds"] for r in runs)
    rate = sum(r["requests"] for r in runs) / seconds
    return (f"{name:30s} {rate:5.1f} requests/s (p95 {max(r['p95'] for r in runs):.0f} ms), machine CPU "
            f"{sum(r['cpu'] for r in runs) / seconds:.0f}%, nginx {sum(r['nginx'] for r in runs) / seconds * 100:.1f}% "
            "of a core"), rate


def test_requests_per_second_with_one_and_two_instances(front, photos, tmp_path, capsys):
    """Each configuration measured twice, alternating, so that a busy neighbour on the machine weighs on all."""
    runs: dict[str, list] = {"gunicorn alone, one instance": [], "nginx + one instance": [],
                             "nginx + two instances": []}
    with run_front(1, tmp_path / "one.log", MANY_CLIENTS) as single:
        run_load(single.url, photos, 16, total=32)
        for _ in range(2):
            runs["gunicorn alone, one instance"].append(
                measured(f"http://127.0.0.1:{single.app_ports[0]}", photos, single))
            runs["nginx + one instance"].append(measured(single.url, photos, single))
    for _ in range(2):
        runs["nginx + two instances"].append(measured(front.url, photos, front))
    lines, rates = zip(*(line(name, measured_runs) for name, measured_runs in runs.items()), strict=True)
    alone, one, two = rates
    with capsys.disabled():
        print(f"\n[front] 16 clients, 2 × 15 s each, {psutil.cpu_count()} CPU cores "
              f"(each instance WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', '1')} × 4 threads):")
        print("\n".join(f"[front]   {text}" for text in lines))
        print(f"[front]   nginx + one instance / gunicorn alone: {one / alone:.2f}; "
              f"two instances / one: {two / one:.2f}")
    assert min(rates) > 0
