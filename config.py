"""Every setting comes from the environment here, with defaults that work on a laptop and a PaaS alike. Each
default is written once, beside the variable that overrides it; a blank variable counts as unset."""

import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from model.classifier import SERVED_PATH

MB = 1024 * 1024


def setting(variable: str, default: Any, parse: Callable[[str], Any] = int) -> Any:
    return field(default=default, metadata={"variable": variable, "parse": parse})


def megabytes(value: str) -> int:
    return int(value) * MB


def from_environment(cls, environ: dict[str, str] | None):
    env = os.environ if environ is None else environ
    values = {}
    for f in fields(cls):
        raw = env.get(f.metadata["variable"], "").strip()
        if raw:
            values[f.name] = f.metadata["parse"](raw)
    return cls(**values)


@dataclass(frozen=True)
class Settings:
    """Settings of the Flask app (one per process)."""

    model_path: Path = setting("MODEL_PATH", SERVED_PATH, Path)  # a LiteRT export, its card beside it
    max_upload_bytes: int = setting("MAX_UPLOAD_MB", 10 * MB, megabytes)
    max_pixels: int = setting("MAX_PIXELS", 40_000_000)  # decompression bombs are refused from the header
    log_level: str = setting("LOG_LEVEL", "INFO", str.upper)
    debug: bool = setting("FLASK_DEBUG", False, lambda v: v in ("1", "true"))  # development only
    # Image decoding one process has in flight at most, so that a worker with four large uploads at once stays
    # within a 512 MB instance (docs/deploy.md); an upload waits for it at most DECODE_WAIT_SECONDS, then gets 503.
    decode_memory_bytes: int = setting("DECODE_MEMORY_MB", 180 * MB, megabytes)
    decode_wait_seconds: int = setting("DECODE_WAIT_SECONDS", 30)
    # Where gunicorn's workers write their metrics for /metrics to sum; gunicorn.conf.py empties it at start, or
    # makes a temporary one when unset. Unset outside gunicorn: one process's metrics.
    metrics_dir: Path | None = setting("PROMETHEUS_MULTIPROC_DIR", None, Path)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        return from_environment(cls, environ)


@dataclass(frozen=True)
class ServerSettings:
    """Settings of gunicorn, read by gunicorn.conf.py."""

    port: int = setting("PORT", 8000)  # set by the platform
    workers: int = setting("WEB_CONCURRENCY", 1)
    threads: int = setting("GUNICORN_THREADS", 4)
    timeout: int = setting("GUNICORN_TIMEOUT", 60)  # seconds a worker may go silent (or take to boot)
    request_timeout: int = setting("REQUEST_TIMEOUT", 60)  # seconds before a 503 and a fresh worker

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "ServerSettings":
        return from_environment(cls, environ)
