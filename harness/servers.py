"""Real servers for tests and benchmarks: the app in a thread, gunicorn, gunicorn behind nginx, their memory
and their metrics."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from config import ServerSettings
from harness.paths import ROOT

NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app) -> Iterator[str]:
    """The Flask app on 127.0.0.1 in a threaded Werkzeug server; yields its base URL."""
    server = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def wait_ready(url: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{url} not ready after {timeout}s")


WORKER_READY = re.compile(r"Worker (\d+) ready")  # gunicorn.conf.py's post_worker_init logs it once per worker


@contextlib.contextmanager
def run_gunicorn(env: dict[str, str] | None = None, log_path: Path | None = None,
                 cwd: Path = ROOT) -> Iterator[tuple[str, subprocess.Popen]]:
    """Real gunicorn with the gunicorn.conf.py of `cwd` (this project, or a benchmark's baseline build) on a free
    port; yields (base URL, process) once every worker serves.

    /healthz answers as soon as the first worker has loaded the app, and keep-alive clients that connect before
    the others have stay on that one. So the server is also waited on for each worker's ready line.
    """
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), **(env or {})}
    with contextlib.ExitStack() as stack:
        if log_path is None:
            log_path = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gunicorn-"))) / "server.log"
        log = stack.enter_context(open(log_path, "wb"))
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "app:app"], cwd=cwd, env=full_env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, process)
            wait_for_workers(log_path, ServerSettings.from_env(full_env).workers, process)
            yield url, process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for_workers(log_path: Path, workers: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(WORKER_READY.findall(log_path.read_text(errors="replace"))) < workers:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {workers} workers ready after {timeout}s: {log_path}")
        time.sleep(0.3)


@dataclass
class Front:
    url: str
    port: int
    app_ports: list[int]
    process: subprocess.Popen

    def instance(self, app_port: int) -> list[psutil.Process]:
        """The gunicorn master and workers of the instance on `app_port`."""
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                if "gunicorn" in " ".join(child.cmdline()) and f"127.0.0.1:{app_port}" in child.cmdline():
                    found.append(child)
        return found


@contextlib.contextmanager
def run_front(instances: int, log_path: Path, env: dict[str, str] | None = None) -> Iterator[Front]:
    """deploy/run-local.sh with `instances` gunicorn instances on free ports; yields once nginx and each serve."""
    if NGINX is None:
        raise RuntimeError("nginx is not installed (apt-get install nginx)")
    port, app_ports = free_port(), [free_port() for _ in range(instances)]
    full_env = {**os.environ, "APP_PORTS": " ".join(map(str, app_ports)), "PYTHON": sys.executable,
                "NGINX": NGINX, **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(["bash", str(ROOT / "deploy" / "run-local.sh"), str(port)], cwd=ROOT,
                                   env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        front = Front(f"http://127.0.0.1:{port}", port, app_ports, process)
        try:
            for app_port in app_ports:
                wait_ready(f"http://127.0.0.1:{app_port}", process)
            wait_ready(front.url, process)
            yield front
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group this test started, nothing else
                process.wait(timeout=10)


def server_processes(process) -> list[psutil.Process]:
    """The master and every process under it (workers, and any child of theirs)."""
    parent = psutil.Process(process.pid)
    return [parent, *parent.children(recursive=True)]


def server_rss_mb(process) -> float:
    return sum(p.memory_info().rss for p in server_processes(process)) / 2**20


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User plus system CPU time of `processes`, those that have exited left out."""
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(process.cpu_times()[:2])
    return total


def server_pss_mb(process) -> float:
    """What the server costs the machine: unlike RSS, PSS counts a page shared by several processes once."""
    return sum(p.memory_full_info().pss for p in server_processes(process)) / 2**20


def metric_value(metrics_text: str, sample: str, **labels: str) -> float:
    """One sample of a Prometheus text page (/metrics), e.g. a histogram's `…_count` for some labels; 0 if absent."""
    for family in text_string_to_metric_families(metrics_text):
        for found in family.samples:
            if found.name == sample and found.labels == labels:
                return found.value
    return 0.0
