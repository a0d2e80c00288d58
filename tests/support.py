"""Helpers for tests and benchmarks that need a served app, real gunicorn or a real browser."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


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


@contextlib.contextmanager
def run_gunicorn(env: dict[str, str] | None = None, log_path: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """Real gunicorn with the project's gunicorn.conf.py on a free port; yields (base URL, process)."""
    port = free_port()
    full_env = {**os.environ, "PORT": str(port), **(env or {})}
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "app:app"], cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process)
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        if log_path:
            log.close()


def write_y4m(image_bgr: np.ndarray, path: Path, frames: int = 10, size: tuple[int, int] = (640, 480)) -> Path:
    """A short video for Chromium's fake camera, made of one real photo (YUV 4:2:0)."""
    width, height = size
    scale = min(width / image_bgr.shape[1], height / image_bgr.shape[0])
    resized = cv2.resize(image_bgr, (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    i420 = cv2.cvtColor(canvas, cv2.COLOR_BGR2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            f.write(b"FRAME\n" + i420)
    return path


def launch_chromium(playwright, fake_video: Path | None = None, extra_args: list[str] | None = None):
    args = list(CHROMIUM_ARGS) + (extra_args or [])
    if fake_video:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_video}"]
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
