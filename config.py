"""Every setting comes from the environment here, with defaults that work on a laptop and a PaaS alike."""

import os
from dataclasses import dataclass
from pathlib import Path

from model.classifier import SERVED_PATH

MB = 1024 * 1024


def _int(environ: dict[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    return int(value) if value else default


@dataclass(frozen=True)
class Settings:
    """Settings of the Flask app (one per process)."""

    model_path: Path = SERVED_PATH  # MODEL_PATH: a LiteRT export (.tflite, its card beside it); model/mask_cnn.int8.tflite
    max_upload_bytes: int = 10 * MB  # MAX_UPLOAD_MB
    max_pixels: int = 40_000_000  # MAX_PIXELS: refuse decompression bombs before decoding
    log_level: str = "INFO"  # LOG_LEVEL
    debug: bool = False  # FLASK_DEBUG=1, development only
    decode_memory_mb: int | None = None  # DECODE_MEMORY_MB: see decode_memory_bytes
    decode_wait_seconds: int = 30  # DECODE_WAIT_SECONDS: how long an upload waits for that memory before a 503
    # PROMETHEUS_MULTIPROC_DIR: where gunicorn's workers write their metrics for /metrics to sum; gunicorn.conf.py
    # empties it at start, or makes a temporary one when unset. Unset outside gunicorn: one process's metrics.
    metrics_dir: Path | None = None

    @property
    def decode_memory_bytes(self) -> int:
        """Image decoding one process has in flight at most: by default 200 MB, so that a worker with four large
        uploads at once stays within a 512 MB instance (docs/deploy.md)."""
        return (self.decode_memory_mb or 200) * MB

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if environ is None else environ)
        return cls(
            model_path=Path(env["MODEL_PATH"]) if env.get("MODEL_PATH") else SERVED_PATH,
            max_upload_bytes=_int(env, "MAX_UPLOAD_MB", 10) * MB,
            max_pixels=_int(env, "MAX_PIXELS", 40_000_000),
            decode_memory_mb=_int(env, "DECODE_MEMORY_MB", 0) or None,
            decode_wait_seconds=_int(env, "DECODE_WAIT_SECONDS", 30),
            metrics_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"]) if env.get("PROMETHEUS_MULTIPROC_DIR") else None,
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            debug=env.get("FLASK_DEBUG", "") in ("1", "true"),
        )


@dataclass(frozen=True)
class ServerSettings:
    """Settings of gunicorn, read by gunicorn.conf.py."""

    port: int = 8000  # PORT, set by the platform
    workers: int = 1  # WEB_CONCURRENCY
    threads: int = 4  # GUNICORN_THREADS
    timeout: int = 60  # GUNICORN_TIMEOUT, seconds a worker may go silent (or take to boot) before it is replaced
    request_timeout: int = 60  # REQUEST_TIMEOUT, seconds a request may run before it gets a 503 and its worker restarts

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "ServerSettings":
        env = dict(os.environ if environ is None else environ)
        return cls(
            port=_int(env, "PORT", 8000),
            workers=_int(env, "WEB_CONCURRENCY", 1),
            threads=_int(env, "GUNICORN_THREADS", 4),
            timeout=_int(env, "GUNICORN_TIMEOUT", 60),
            request_timeout=_int(env, "REQUEST_TIMEOUT", 60),
        )
