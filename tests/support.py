"""What tests and benchmarks share: where the photos are, served apps, real gunicorn and a real browser."""

import contextlib
import io
import itertools
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
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import psutil
import requests
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from config import ServerSettings
from model.image_io import decode_image
from training.evaluate import read_voc

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data"  # real photos and faces small enough to commit (sources: tests/data/README.md)
DATASETS = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
CHROMIUM = "/usr/bin/chromium"
NGINX = shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def scene_photos(scenes: Path, faces: int | None = None, min_face: int = 0) -> list[tuple[Path, list]]:
    """(image path, ground-truth faces) for photos in the layout of scenes-dev, optionally with exactly `faces` faces."""
    chosen = []
    for xml_path in sorted((scenes / "annotations").glob("*.xml")):
        truths = read_voc(xml_path)
        if (faces is None or len(truths) == faces) and all(min(t.box[2:]) >= min_face for t in truths):
            chosen.append((next((scenes / "images").glob(xml_path.stem + ".*")), truths))
    return chosen


def encode(image_bgr: np.ndarray, fmt: str = "JPEG", mode: str | None = None, **save_args) -> bytes:
    """A real photo re-encoded with Pillow in a given format and mode (CMYK, L, RGBA, I;16…)."""
    image = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


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
    the others have stay on that one. So this project's server is also waited on for each worker's ready line; a
    baseline build, whose gunicorn.conf.py predates the line, for /healthz alone.
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
            if cwd == ROOT:
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


def fit_on_canvas(image_bgr: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A real photo scaled to fit a black frame of `size` (width, height), like a camera frame."""
    width, height = size
    scale = min(width / image_bgr.shape[1], height / image_bgr.shape[0])
    resized = cv2.resize(image_bgr, (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def crowd_mosaic(scenes: Path = FIXTURES / "scenes", columns: int = 6, cell: tuple[int, int] = (200, 150)) -> np.ndarray:
    """A crowd made of the committed scene photos (no committed photo has more than four faces): each photo and its
    mirror image, cropped to fill a `cell` (width, height), in a grid; about 48 faces in 1200×750."""
    photos = [decode_image(p.read_bytes()) for p in sorted((scenes / "images").iterdir())]
    photos += [cv2.flip(p, 1) for p in photos]
    width, height = cell
    rows = -(-len(photos) // columns)
    canvas = np.full((rows * height, columns * width, 3), 40, np.uint8)
    for i, photo in enumerate(photos):
        row, column = divmod(i, columns)
        scale = max(width / photo.shape[1], height / photo.shape[0])
        resized = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                             interpolation=cv2.INTER_AREA)
        top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
        canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = \
            resized[top : top + height, left : left + width]
    return canvas


def write_y4m(image_bgr: np.ndarray, path: Path, frames: int = 10, size: tuple[int, int] = (640, 480)) -> Path:
    """A short video for Chromium's fake camera, made of one real photo (YUV 4:2:0)."""
    width, height = size
    i420 = cv2.cvtColor(fit_on_canvas(image_bgr, size), cv2.COLOR_BGR2YUV_I420).tobytes()
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


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)  # seconds from the start, one per failure
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.failures)

    def summary(self) -> str:
        p50, p95 = np.percentile(self.latencies_ms, [50, 95])
        return (f"{self.requests} requests in {self.seconds:.0f} s, {len(self.failures)} failed "
                f"({len(self.failures) / max(1, self.requests):.2%}); p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                f"{len(self.latencies_ms) / self.seconds:.1f} requests/s")


def run_load(url: str, photos: list[bytes], clients: int, seconds: float | None = None,
             total: int | None = None, during=None) -> LoadResult:
    """`clients` threads post photos until `seconds` pass or `total` requests are done; `during` runs alongside.

    At least one bound is required, and `total=0` means no requests: a fast machine must never turn a bound
    into "no bound".
    """
    if seconds is None and total is None:
        raise ValueError("run_load needs seconds, total or both")
    result, lock, counter = LoadResult(), threading.Lock(), itertools.count()
    start = time.monotonic()

    def client(offset: int) -> None:
        session = requests.Session()
        for i in itertools.count(offset):
            n = next(counter)
            if (seconds is not None and time.monotonic() - start > seconds) or (total is not None and n >= total):
                return
            sent = time.monotonic()
            try:
                response = session.post(f"{url}/api/detect", data=photos[i % len(photos)],
                                        headers={"Content-Type": "image/jpeg"}, timeout=60)
                ok = response.status_code == 200 and "faces" in response.json()
                outcome = None if ok else f"{response.status_code}: {response.text[:100]}"
            except requests.RequestException as exc:
                outcome = exc.__class__.__name__
                session = requests.Session()
            with lock:
                if outcome:
                    result.failures.append(outcome)
                    result.failure_times.append(sent - start)
                else:
                    result.latencies_ms.append((time.monotonic() - sent) * 1000)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    if during:
        during()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - start
    return result


def server_processes(process) -> list[psutil.Process]:
    """The master and every process under it (workers, and any child of theirs)."""
    parent = psutil.Process(process.pid)
    return [parent, *parent.children(recursive=True)]


def server_rss_mb(process) -> float:
    return sum(p.memory_info().rss for p in server_processes(process)) / 2**20


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


class RecordingClassifier:
    """Wraps the real classifier and keeps every batch the pipeline sends it."""

    runtime = "recording"

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return self.inner.predict(batch)
