"""Face detection with YuNet (libfacedetection's network) through OpenCV's `cv2.FaceDetectorYN`.

YuNet finds masked faces, which Haar cascades miss, runs on every platform OpenCV has wheels for, and its
232 KB ONNX file is committed beside this module: nothing is downloaded at run time. Boxes come back in the
original image's pixels, clipped to it.
"""

import contextlib
import hashlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

YUNET_PATH = Path(__file__).with_name("face_detection_yunet_2023mar.onnx")
SMALL_SIDE = 640  # inputs of at most this many px a side (a webcam's frame) may go to the small networks


class Networks:
    """The detector's YuNet networks, each lent to one call at a time (a `cv2.FaceDetectorYN` holds its input size
    between `setInputSize` and `detect`). The first takes inputs of any size; the `count - 1` others only inputs of
    at most `SMALL_SIDE` a side, so that their buffers stay small. A small input borrows an idle small network, else
    the first; a larger one waits for the first. Networks are made when first needed and kept, and the one given
    back last is lent first, so that one client's calls reuse the network whose buffers are warm in the caches."""

    def __init__(self, make: Callable[[], "cv2.FaceDetectorYN"], count: int) -> None:
        if count < 1:
            raise ValueError(f"a detector needs at least one network: {count}")
        self._make, self.count = make, count
        self._changed = threading.Condition()
        self._first: cv2.FaceDetectorYN | None = None
        self._first_idle = True
        self._small_idle: list[cv2.FaceDetectorYN] = []
        self._small_made = 0

    @property
    def made(self) -> tuple[int, int]:
        """Networks made so far: (the one for any size, small ones)."""
        return int(self._first is not None), self._small_made

    @contextlib.contextmanager
    def lend(self, small_input: bool) -> Iterator["cv2.FaceDetectorYN"]:
        with self._changed:
            while (network := self._take(small_input)) is None:
                self._changed.wait()
        try:
            yield network
        finally:
            with self._changed:
                if network is self._first:
                    self._first_idle = True
                else:
                    self._small_idle.append(network)
                self._changed.notify_all()

    def _take(self, small_input: bool) -> "cv2.FaceDetectorYN | None":
        """An idle network the input may use, made if need be; None if it must wait. Called holding the lock."""
        if small_input:
            if self._small_idle:
                return self._small_idle.pop()
            if self._small_made < self.count - 1:
                self._small_made += 1
                return self._make()
        if not self._first_idle:
            return None
        self._first_idle = False
        if self._first is None:
            self._first = self._make()
        return self._first


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h
    score: float  # 0..1


def _clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


class FaceDetector:
    """YuNet on a copy of the image at most `max_side` pixels wide or high (the base), at several magnifications.

    A photo is searched at each of `photo_scales` (magnifications of the base) and the boxes of all of them are
    merged by non-maximum suppression: YuNet misses faces under about 24 px, which a magnified copy brings into
    its range, while large faces are found best at the base. A magnified copy larger than `max_side` is searched
    in overlapping tiles of at most `max_side` a side, so the network's buffers stay bounded; a box that touches
    a tile's inner edge is dropped (the overlap holds that face whole in a neighbouring tile). Boxes found on a
    copy other than the base need a score of `other_min_score` (upscaled texture gives more false faces).
    A video frame is searched at the base only, so the webcam keeps its rate.

    A `cv2.FaceDetectorYN` keeps buffers for the largest input it has run at: about 25 MB at 640×640, 110 MB at
    1280×1280. With `networks` > 1, calls search side by side (`Networks`): one network takes any input and the
    others inputs of at most `SMALL_SIDE` a side (a webcam's frames, a small photo's base), whose buffers stay
    small; `warm` makes and sizes those ahead, so that memory does not grow as they meet their first requests.
    OpenCV spreads each search over the cores too.
    """

    name = "yunet"

    def __init__(self, max_side: int = 1280, min_score: float = 0.4, nms_threshold: float = 0.3,
                 photo_scales: tuple[float, ...] = (1.0, 1.75), merge_threshold: float = 0.3,
                 other_min_score: float | None = 0.7, networks: int = 1,
                 model_path: Path = YUNET_PATH) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(f"face detector model not found: {model_path}")
        if 1.0 not in photo_scales:
            raise ValueError(f"photo_scales must hold the base scale, 1.0: {photo_scales}")
        self.max_side, self.min_score, self.nms_threshold = max_side, min_score, nms_threshold
        self.photo_scales, self.merge_threshold = tuple(photo_scales), merge_threshold
        self.other_min_score = min_score if other_min_score is None else other_min_score
        self.model_path = model_path
        self.networks = Networks(self._load, networks)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a photo's boxes could: training caches of detector crops are keyed on it."""
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:12]
        scales = "+".join(f"{s:g}" for s in self.photo_scales)
        return (f"{self.name}-{digest}-side{self.max_side}-score{self.min_score:g}-nms{self.nms_threshold:g}"
                f"-scales{scales}-merge{self.merge_threshold:g}-other{self.other_min_score:g}")

    def _load(self) -> "cv2.FaceDetectorYN":
        # OpenCV 5's DNN warns that its new engine ignores targets each time a network loads: not for operators.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            return cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.min_score,
                                             self.nms_threshold, 5000)
        finally:
            cv2.utils.logging.setLogLevel(level)

    def warm(self) -> None:
        """Make every small network now and size its buffers for `SMALL_SIDE`, the largest input it takes."""
        blank = np.zeros((SMALL_SIDE, SMALL_SIDE, 3), np.uint8)
        with contextlib.ExitStack() as lent:
            for network in [lent.enter_context(self.networks.lend(True)) for _ in range(self.networks.count - 1)]:
                network.setInputSize((SMALL_SIDE, SMALL_SIDE))
                network.detect(blank)

    def _run(self, image_bgr: np.ndarray) -> np.ndarray:
        """YuNet's rows (x, y, w, h, landmarks…, score) for one image of at most `max_side` a side."""
        height, width = image_bgr.shape[:2]
        with self.networks.lend(max(height, width) <= SMALL_SIDE) as network:
            network.setInputSize((width, height))
            _, rows = network.detect(np.ascontiguousarray(image_bgr))
        return np.zeros((0, 15), np.float32) if rows is None else rows

    def _search(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows for an image of any size: whole, or in overlapping tiles when a side is over `max_side`."""
        height, width = image_bgr.shape[:2]
        if max(height, width) <= self.max_side:
            return self._run(image_bgr)
        overlap = self.max_side // 4
        found = []
        for y0, y1 in _spans(height, self.max_side, overlap):
            for x0, x1 in _spans(width, self.max_side, overlap):
                rows = self._run(image_bgr[y0:y1, x0:x1]).copy()
                x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
                whole = ((x0 == 0) | (x > 1)) & ((y0 == 0) | (y > 1))
                whole &= ((x1 == width) | (x + w < x1 - x0 - 1)) & ((y1 == height) | (y + h < y1 - y0 - 1))
                rows = rows[whole]
                rows[:, 0] += x0
                rows[:, 1] += y0
                found.append(rows)
        return np.concatenate(found)

    def detect(self, image_bgr: np.ndarray, video_frame: bool = False) -> list[Detection]:
        """Faces in a photo (every scale of `photo_scales`), or in a video frame (the base scale only)."""
        height, width = image_bgr.shape[:2]
        base = min(1.0, self.max_side / max(height, width))
        boxes, scores = [], []
        for magnification in (1.0,) if video_frame else self.photo_scales:
            scale = base * magnification
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = image_bgr if size == (width, height) else cv2.resize(
                image_bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            rows = self._search(resized)
            if magnification != 1.0:
                rows = rows[rows[:, -1] >= self.other_min_score]
            for row in rows:
                box = _clip_box(*(row[:4] / scale), width, height)
                if box:
                    boxes.append(box)
                    scores.append(float(row[-1]))
        if len(self.photo_scales) > 1 and not video_frame and boxes:
            kept = cv2.dnn.NMSBoxes(boxes, scores, self.min_score, self.merge_threshold)
            boxes, scores = [boxes[i] for i in kept], [scores[i] for i in kept]
        return [Detection(b, s) for b, s in zip(boxes, scores, strict=True)]


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Equal overlapping [start, end) spans of at most `tile` covering `length`, neighbours sharing ≥ `overlap`."""
    count = max(1, math.ceil((length - overlap) / (tile - overlap)))
    size = math.ceil((length + (count - 1) * overlap) / count)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)] if count > 1 else [0]
    return [(s, s + size) for s in starts]


def load_detector(networks: int = 1) -> FaceDetector:
    detector = FaceDetector(networks=networks)
    log.info("face detector: %s (largest side %d px, scales %s, score >= %.2f, %d network(s) side by side)",
             detector.name, detector.max_side, detector.photo_scales, detector.min_score, networks)
    return detector
