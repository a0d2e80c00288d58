"""Face detection with YuNet (libfacedetection's network, `model.yunet`) at one or more scales of a photo.

YuNet finds masked faces, which Haar cascades miss, and its 230 KB ONNX file is committed beside this module:
nothing is downloaded at run time. Boxes come back in the original image's pixels, clipped to it.
"""

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from model.yunet import YUNET_PATH, YuNet

log = logging.getLogger(__name__)


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

    One YuNet session serves every thread of a process, side by side.
    """

    name = "yunet"

    def __init__(self, max_side: int = 1280, min_score: float = 0.4, nms_threshold: float = 0.3,
                 photo_scales: tuple[float, ...] = (1.0, 1.75), merge_threshold: float = 0.3,
                 other_min_score: float | None = 0.7, model_path: Path = YUNET_PATH) -> None:
        if not model_path.is_file():
            raise FileNotFoundError(f"face detector model not found: {model_path}")
        if 1.0 not in photo_scales:
            raise ValueError(f"photo_scales must hold the base scale, 1.0: {photo_scales}")
        self.max_side, self.min_score, self.nms_threshold = max_side, min_score, nms_threshold
        self.photo_scales, self.merge_threshold = tuple(photo_scales), merge_threshold
        self.other_min_score = min_score if other_min_score is None else other_min_score
        self.model_path = model_path
        self.network = YuNet(model_path, min_score, nms_threshold)

    @property
    def fingerprint(self) -> str:
        """Changes whenever a photo's boxes could: training caches of detector crops are keyed on it."""
        digest = hashlib.sha256(self.model_path.read_bytes()).hexdigest()[:12]
        scales = "+".join(f"{s:g}" for s in self.photo_scales)
        return (f"{self.name}-{digest}-side{self.max_side}-score{self.min_score:g}-nms{self.nms_threshold:g}"
                f"-scales{scales}-merge{self.merge_threshold:g}-other{self.other_min_score:g}")

    def warm(self) -> None:
        """Search a blank webcam frame once, so that the first request does not pay the session's first run."""
        self.network.detect(np.zeros((480, 640, 3), np.uint8))

    def _search(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows for an image of any size: whole, or in overlapping tiles when a side is over `max_side`."""
        height, width = image_bgr.shape[:2]
        if max(height, width) <= self.max_side:
            return self.network.detect(image_bgr)
        overlap = self.max_side // 4
        found = []
        for y0, y1 in _spans(height, self.max_side, overlap):
            for x0, x1 in _spans(width, self.max_side, overlap):
                rows = self.network.detect(image_bgr[y0:y1, x0:x1])
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


def load_detector() -> FaceDetector:
    detector = FaceDetector()
    log.info("face detector: %s (largest side %d px, scales %s, score >= %.2f)",
             detector.name, detector.max_side, detector.photo_scales, detector.min_score)
    return detector
