"""gunicorn settings, from the environment through config.ServerSettings (PORT, WEB_CONCURRENCY, …)."""

from config import ServerSettings

_server = ServerSettings.from_env()

bind = f"0.0.0.0:{_server.port}"
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = 30
keepalive = 5
# Each worker loads TensorFlow and the model after the fork: TensorFlow is not fork-safe once initialised, and
# with --preload every request to a forked worker hung (docs/benchmarks.md, "Serving").
preload_app = False
# Recycle workers now and then so that slow growth in a long-lived process cannot pile up.
max_requests = 5000
max_requests_jitter = 500
accesslog = None  # the app writes one structured line per request itself (web/http_policy.py)
errorlog = "-"
worker_tmp_dir = "/dev/shm"  # heartbeats off the (sometimes slow, sometimes read-only) disk


def on_starting(server) -> None:
    """Refuse to start, with one line naming the file, when the model file is missing or corrupt."""
    import sys

    from config import Settings
    from model.classifier import ModelLoadError, check_model_file

    settings = Settings.from_env()
    try:
        check_model_file(settings.model_runtime, settings.model_path)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
