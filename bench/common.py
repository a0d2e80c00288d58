"""What the benchmarks share: the dataset location and a real 640×480 one-face JPEG."""

import os
import statistics
import sys
import time
from pathlib import Path

import cv2

from model.image_io import decode_image
from tests.support import ROOT, fit_on_canvas

DATASETS = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
ONE_FACE_PHOTO = DATASETS / "scenes-dev" / "images" / "12-photo.jpg"


def one_face_jpeg_640x480() -> bytes:
    if not ONE_FACE_PHOTO.exists():
        sys.exit(f"needs {ONE_FACE_PHOTO} (set DATASETS_DIR)")
    frame = fit_on_canvas(decode_image(ONE_FACE_PHOTO.read_bytes()), (640, 480))
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def median_ms(fn, repeats: int = 200, warmup: int = 10) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)
