"""gunicorn settings, from the environment through config.ServerSettings (PORT, WEB_CONCURRENCY, …)."""

import ctypes
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from config import ServerSettings

_server = ServerSettings.from_env()

bind = f"0.0.0.0:{_server.port}"
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = 30
keepalive = 5
# Each worker loads the detector and the model after the fork, so that no native thread pool crosses a fork
# (with TensorFlow, which the server once ran, --preload hung every request); with LiteRT, preloading saves
# memory only until the workers have served a few hundred requests (docs/benchmarks.md, "Serving").
preload_app = False
# Recycle workers now and then so that slow growth in a long-lived process cannot pile up.
max_requests = 5000
max_requests_jitter = 500
# glibc's malloc keeps freed memory in one arena per thread and, once a large buffer is freed, serves buffers up
# to 32 MB from those arenas instead of mmap: after a few large photos each of a worker's threads holds on to its
# own tens of MB. Two arenas and a fixed 1 MB mmap threshold give decoded images back to the system when freed
# (measured in docs/deploy.md). Set here, in the master before it forks, so every worker inherits it.
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (musl): its allocator has neither setting
        pass
    else:
        _libc.mallopt(-8, 2)  # M_ARENA_MAX
        _libc.mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD, which also turns off its dynamic raising
accesslog = None  # the app writes one structured line per request itself (web/http_policy.py)
errorlog = "-"
worker_tmp_dir = "/dev/shm"  # heartbeats off the (sometimes slow, sometimes read-only) disk
# gunicorn's control socket (for gunicornc) lets any process of this user change the worker count at run time, and
# every instance on a host shares its default path in $HOME; a platform scales by instances and settings instead.
control_socket_disable = True


_metrics_made: list[str] = []  # the temporary metrics folder this server made, removed when it exits


def on_starting(server) -> None:
    """Refuse to start, with one line naming the file, when the model file is missing or corrupt; then give the
    workers their metrics folder (web/metrics.py)."""
    from config import Settings
    from model.classifier import ModelLoadError, check_model_file

    settings = Settings.from_env()
    try:
        check_model_file(settings.model_path)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    _prepare_metrics_dir(settings.metrics_dir)


def _prepare_metrics_dir(configured: Path | None) -> None:
    """Workers write their metrics to files in PROMETHEUS_MULTIPROC_DIR, which /metrics sums. Values of an earlier
    run would be summed in, so a configured folder is emptied of them; without one, a temporary folder serves this
    run. Set in the master before any worker forks, and before any worker imports prometheus_client, which reads
    it once."""
    if configured is None:
        directory = Path(tempfile.mkdtemp(prefix="mask-metrics-"))
        _metrics_made.append(str(directory))
    else:
        directory = configured
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def child_exit(server, worker) -> None:
    """A dead worker's requests in progress stop counting (its counters and histograms still do)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    for directory in _metrics_made:
        shutil.rmtree(directory, ignore_errors=True)


# gthread's heartbeat runs in the worker's main loop, so gunicorn's `timeout` never fires for a request thread that
# hangs (a stuck native call, say): without this watchdog such a worker keeps its slot, and its client waits forever.
_REQUEST_TIMEOUT = _server.request_timeout
_in_flight: dict[int, tuple[float, object]] = {}  # id(request) → (start, request), in this worker process
_OVERDUE_BODY = b'{"error": {"code": "timeout", "message": "The request ran over the time limit; try again."}}'
_OVERDUE_ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 5\r\nContent-Length: %d\r\n\r\n%s" % (len(_OVERDUE_BODY), _OVERDUE_BODY)
)


def pre_request(worker, req) -> None:
    _in_flight[id(req)] = (time.monotonic(), req)


def post_request(worker, req, environ, resp) -> None:
    _in_flight.pop(id(req), None)


def post_worker_init(worker) -> None:
    """Say that the worker serves (gunicorn logs only its fork, before the model loads), and start the watchdog:
    a request over REQUEST_TIMEOUT gets a 503 and its worker is replaced."""
    worker.log.info("Worker %d ready: app and model loaded", os.getpid())

    def watch() -> None:
        while worker.alive:
            time.sleep(1)
            now = time.monotonic()
            overdue = [req for start, req in list(_in_flight.values()) if now - start > _REQUEST_TIMEOUT]
            if overdue:
                _give_up(worker, overdue)

    threading.Thread(target=watch, name="request-watchdog", daemon=True).start()


def _give_up(worker, overdue: list) -> None:
    for req in overdue:
        worker.log.error("%s %s ran over REQUEST_TIMEOUT (%d s): answering 503 and restarting worker %d",
                         req.method, req.path, _REQUEST_TIMEOUT, os.getpid())
        sock = getattr(getattr(req, "unreader", None), "sock", None)
        if sock is not None:
            try:
                sock.sendall(_OVERDUE_ANSWER)
                sock.shutdown(2)  # SHUT_RDWR: the stuck thread's late answer goes nowhere
            except OSError:
                pass  # the client is already gone
    worker.alive = False  # stop accepting; requests in flight on this worker may still finish
    time.sleep(worker.cfg.graceful_timeout)
    os._exit(1)  # the stuck thread would keep the process alive; the master starts a fresh worker
