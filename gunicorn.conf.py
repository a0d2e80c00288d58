"""gunicorn settings, from the environment through config.ServerSettings (PORT, WEB_CONCURRENCY, …)."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from config import ServerSettings
from web.malloc import return_freed_images
from web.watchdog import RequestWatchdog

_server = ServerSettings.from_env()

bind = f"0.0.0.0:{_server.port}"
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = 30
keepalive = 5
# Each worker loads the detector and the model after the fork, so that no native thread pool crosses a fork;
# preloading would save memory only until the workers have served a few hundred requests (bench.preload).
preload_app = False
# Recycle workers now and then so that slow growth in a long-lived process cannot pile up.
max_requests = 5000
max_requests_jitter = 500
return_freed_images()  # in the master, before it forks (web/malloc.py)
accesslog = None  # the app writes one structured line per request itself (web/http_policy.py)
errorlog = "-"
worker_tmp_dir = "/dev/shm"  # heartbeats off the (sometimes slow, sometimes read-only) disk
# gunicorn's control socket (for gunicornc) lets any process of this user change the worker count at run time, and
# every instance on a host shares its default path in $HOME; a platform scales by instances and settings instead.
control_socket_disable = True


_metrics_made: list[str] = []  # the temporary metrics folder this server made, removed when it exits


def on_starting(server) -> None:
    """Refuse to start, with one line naming the file, when the model file or a face detector's file is missing or
    corrupt; then give the workers their metrics folder (web/metrics.py)."""
    from config import Settings
    from model.classifier import ModelLoadError, check_model_file
    from model.detector import check_detector_files

    settings = Settings.from_env()
    try:
        check_model_file(settings.model_path)
        check_detector_files()
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


_watchdog = RequestWatchdog(_server.request_timeout)  # a request over REQUEST_TIMEOUT: 503, fresh worker


def pre_request(worker, req) -> None:
    _watchdog.started(req)


def post_request(worker, req, environ, resp) -> None:
    _watchdog.finished(req)


def post_worker_init(worker) -> None:
    """Say that the worker serves (gunicorn logs only its fork, before the model loads), and start the watchdog."""
    worker.log.info("Worker %d ready: app and model loaded", os.getpid())
    _watchdog.watch(worker)
