"""What the benchmarks share: a real 640×480 one-face JPEG and a median timer."""

import statistics
import time
from collections.abc import Callable

import cv2

from harness.images import fit_on_canvas
from harness.paths import FIXTURES
from model.image_io import decode_image

ONE_FACE_PHOTO = FIXTURES / "scenes" / "images" / "12-photo.jpg"


def one_face_jpeg_640x480() -> bytes:
    frame = fit_on_canvas(decode_image(ONE_FACE_PHOTO.read_bytes()), (640, 480))
    return cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def median_ms(fn: Callable[[], object], repeats: int = 200, warmup: int = 10, seconds: float = 20.0) -> float:
    """Median of `repeats` calls or of those done in `seconds`, whichever ends first, so slow machines finish too."""
    for _ in range(warmup):
        fn()
    times, deadline = [], time.monotonic() + seconds
    while len(times) < repeats and time.monotonic() < deadline:
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def table_header(columns: list[str]) -> str:
    """A Markdown table's heading and rule, as the benchmarks print their figures for docs/."""
    return "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns)
