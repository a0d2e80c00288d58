"""What the tests share that benchmarks do not: a classifier that records its batches, the metrics file an
"earlier run" leaves behind, posting an image through Flask's test client or to real gunicorn (raw bytes
included), and the largest upload of each kind that the limits accept."""

import io
import socket
import subprocess
import time
from urllib.parse import urlsplit

import cv2
import numpy as np
import psutil
import requests

from config import Settings
from model.image_io import ImageHeader
from web.upload_limits import decode_cost

STALE_METRICS = "counter_1.db"  # left in the metrics folder by an earlier run: not a valid file of this one


class RecordingClassifier:
    """Wraps the real classifier and keeps every batch the pipeline sends it."""

    runtime = "recording"

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return self.inner.predict(batch)


def post_image(client, data: bytes, content_type: str = "image/jpeg", route: str = "/api/detect", multipart=True):
    if multipart:
        return client.post(route, data={"image": (io.BytesIO(data), "photo", content_type)},
                           content_type="multipart/form-data")
    return client.post(route, data=data, content_type=content_type)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]


def workers(process: subprocess.Popen) -> set[int]:
    return {child.pid for child in psutil.Process(process.pid).children()}


def post(url: str, data: bytes, content_type: str = "image/jpeg", multipart: bool = True) -> requests.Response:
    if multipart:
        return requests.post(f"{url}/api/detect", files={"image": ("upload", data, content_type)}, timeout=60)
    return requests.post(f"{url}/api/detect", data=data, headers={"Content-Type": content_type}, timeout=60)


def raw_http(url: str, request: bytes, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (malformed on purpose) and read the whole answer; status, headers, body."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(request)
        answer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split()[1]), headers, body


def post_request(path: str, content_type: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n{extra}"
            f"Connection: close\r\n\r\n").encode() + body


def assert_still_serving(url: str, photo: bytes) -> None:
    response = requests.post(f"{url}/api/detect", data=photo, headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert response.status_code == 200 and len(response.json()["faces"]) == 1
    assert requests.get(f"{url}/healthz", timeout=30).json() == {"status": "ok"}


KINDS = {  # kind → (format, extension, channels, sample type): the rows of docs/deploy.md's memory table
    "8-bit grey PNG": ("PNG", ".png", 1, np.uint8),
    "16-bit grey PNG": ("PNG", ".png", 1, np.uint16),
    "8-bit RGB PNG": ("PNG", ".png", 3, np.uint8),
    "16-bit RGB PNG": ("PNG", ".png", 3, np.uint16),
    "8-bit RGBA PNG": ("PNG", ".png", 4, np.uint8),
    "16-bit RGBA PNG": ("PNG", ".png", 4, np.uint16),
    "RGB JPEG": ("JPEG", ".jpg", 3, np.uint8),
    "grey JPEG": ("JPEG", ".jpg", 1, np.uint8),
    "RGB WebP": ("WEBP", ".webp", 3, np.uint8),
    "RGBA WebP": ("WEBP", ".webp", 4, np.uint8),
}


def largest(kind: str, settings: Settings) -> tuple[int, int, bytes]:
    """(width, height, encoded) of the largest image of `kind` that MAX_PIXELS and the decode budget accept."""
    fmt, extension, channels, dtype = KINDS[kind]
    per_pixel = decode_cost(ImageHeader(fmt, 1, 1, 1, channels == 4, dtype == np.uint16))
    pixels = min(settings.max_pixels, settings.decode_memory_bytes // per_pixel)
    width = 16383 if fmt == "WEBP" else 7000  # WebP's widest
    height = pixels // width
    array = np.full((height, width, channels), 128 if channels == 4 else 0, dtype)  # alpha half transparent
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if fmt == "WEBP" else []  # lossless
    return width, height, cv2.imencode(extension, array, params)[1].tobytes()
