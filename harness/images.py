"""Real photos turned into the inputs tests and benchmarks need: encoded files, canvases, a crowd, a camera file."""

import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from harness.paths import FIXTURES
from model.image_io import decode_image


def encode(image_bgr: np.ndarray, fmt: str = "JPEG", mode: str | None = None, **save_args) -> bytes:
    """A real photo re-encoded with Pillow in a given format and mode (CMYK, L, RGBA, I;16…)."""
    image = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def fit_on_canvas(image_bgr: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A real photo scaled to fit a black frame of `size` (width, height), like a camera frame."""
    width, height = size
    scale = min(width / image_bgr.shape[1], height / image_bgr.shape[0])
    resized = cv2.resize(image_bgr, (round(image_bgr.shape[1] * scale), round(image_bgr.shape[0] * scale)))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - resized.shape[0]) // 2, (width - resized.shape[1]) // 2
    canvas[top : top + resized.shape[0], left : left + resized.shape[1]] = resized
    return canvas


def crowd_mosaic(scenes: Path = FIXTURES / "scenes", columns: int = 6,
                 cell: tuple[int, int] = (200, 150)) -> np.ndarray:
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
