"""Face detection with YuNet (libfacedetection's network) through OpenCV's `cv2.FaceDetectorYN`.

YuNet finds masked faces, which Haar cascades miss, runs on every platform OpenCV has wheels for, and its
232 KB ONNX file is committed beside this module: nothing is downloaded at run time. Boxes come back in the
original image's pixels, clipped to it.
"""

import hashlib
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

YUNET_PATH = Path(__file__).with_name("face_detection_yunet_2023mar.onnx")


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
    """YuNet on a copy of the image at most `max_side` pixels wide or high.

    One `cv2.FaceDetectorYN` serves every thread, one call at a time: it holds its input size between
    `setInputSize` and `detect`, and keeps buffers for the largest size it has run at (tens of MB), so one per
    thread would multiply that by gunicorn's threads. OpenCV spreads each detection over the cores itself.
    """

    name = "yunet"

    @property
    def fingerprint(self) -> str:
        """Changes whenever the boxes could: training caches of detector crops are keyed on it."""
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:12]
        return f"{self.name}-{digest}-side{self.max_side}-score{self.min_score:g}-nms{self.nms_threshold:g}"

    def __init__(self, max_side: int = 1280, min_score: float = 0.5, nms_threshold: float = 0.3,
                 model_path: Path = YUNET_PATH) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(f"face detector model not found: {model_path}")
        self.max_side, self.min_score, self.nms_threshold = max_side, min_score, nms_threshold
        self.model_path = model_path
        self._lock = threading.Lock()
        self._loaded: cv2.FaceDetectorYN | None = None

    def _network(self) -> "cv2.FaceDetectorYN":
        if self._loaded is None:
            # OpenCV 5's DNN warns that its new engine ignores targets each time a network loads: not for operators.
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
            try:
                network = cv2.FaceDetectorYN.create(str(self.model_path), "", (320, 320), self.min_score,
                                                    self.nms_threshold, 5000)
            finally:
                cv2.utils.logging.setLogLevel(level)
            self._loaded = network
        return self._loaded

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image_bgr if scale == 1.0 else cv2.resize(
            image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        with self._lock:
            network = self._network()
            network.setInputSize((small.shape[1], small.shape[0]))
            _, rows = network.detect(np.ascontiguousarray(small))
        detections = []
        for row in [] if rows is None else rows:
            x, y, w, h = row[:4] / scale
            box = _clip_box(x, y, w, h, width, height)
            if box:
                detections.append(Detection(box, float(row[-1])))
        return detections


def load_detector() -> FaceDetector:
    detector = FaceDetector()
    log.info("face detector: %s (largest side %d px, score >= %.2f)", detector.name, detector.max_side,
             detector.min_score)
    return detector
