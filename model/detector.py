"""Face detection: CenterFace for photos, with YuNet-n's boxes filling in where CenterFace has none; one network's
single pass for webcam frames.

CenterFace finds more of the small and masked faces of crowds, and fits large faces better; YuNet-n finds some
that CenterFace misses. Where both find a face, CenterFace's box stays: a score-ordered merge of the two did
worse (docs/detector.md). The ONNX files are committed beside this module with their licences: nothing is
downloaded at run time. Boxes come back in the original image's pixels, clipped to it.
"""

import hashlib
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from model.centerface import CENTERFACE_PATH, CenterFace
from model.yunet import YUNET_N_PATH, YUNET_S_PATH, YuNet

log = logging.getLogger(__name__)


class Network(Protocol):
    model_path: Path
    min_score: float

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, five landmarks' x and y, score), best first."""
        ...


NETWORKS = {"centerface": (CenterFace, CENTERFACE_PATH), "yunet-n": (YuNet, YUNET_N_PATH),
            "yunet-s": (YuNet, YUNET_S_PATH)}


def network(name: str, min_score: float, arena: bool = True) -> Network:
    """A detector network by its name in NETWORKS, keeping the boxes that score at least `min_score`; `arena`:
    its session reuses its buffers from call to call (`OnnxSession`)."""
    kind, path = NETWORKS[name]
    return kind(path, min_score, arena=arena)


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


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every (x, y, w, h) row of `a` with every row of `b`, shape (len(a), len(b))."""
    ax1, ay1, bx1, by1 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.clip(np.minimum(ax1[:, None], bx1) - np.maximum(a[:, None, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(ay1[:, None], by1) - np.maximum(a[:, None, 1], b[:, 1]), 0, None)
    inter = w * h
    return inter / (a[:, None, 2] * a[:, None, 3] + b[:, 2] * b[:, 3] - inter)


class FaceDetector:
    """A photo is searched by `photo` on a copy at most `max_side` pixels wide or high (the base); then `fill`, on
    the base magnified `fill_scale` times, adds its boxes that overlap none of `photo`'s by more than
    `fill_overlap` (IoU). A magnified copy larger than `max_side` is searched in overlapping tiles of at most
    `max_side` a side, so the networks' buffers stay bounded; a box that touches a tile's inner edge is dropped
    (the overlap holds that face whole in a neighbouring tile). A video frame gets one pass of `frame` on the
    base, so the webcam keeps its rate.

    The networks' sessions serve every thread of a process, side by side.
    """

    def __init__(self, photo: Network, fill: Network | None, frame: Network, max_side: int = 1280,
                 fill_overlap: float = 0.3, fill_scale: float = 1.0) -> None:
        self.photo, self.fill, self.frame = photo, fill, frame
        self.max_side, self.fill_overlap, self.fill_scale = max_side, fill_overlap, fill_scale

    @property
    def name(self) -> str:
        fill = f"+{_network_name(self.fill)}" if self.fill else ""
        return f"{_network_name(self.photo)}{fill}"

    @property
    def fingerprint(self) -> str:
        """Changes whenever a photo's or a frame's boxes could: training caches of detector crops are keyed on it."""
        def part(net: Network) -> str:
            digest = hashlib.sha256(net.model_path.read_bytes()).hexdigest()[:12]
            return f"{_network_name(net)}-{digest}-score{net.min_score:g}"

        fill = f"+fill-{part(self.fill)}-x{self.fill_scale:g}-overlap{self.fill_overlap:g}" if self.fill else ""
        return f"photo-{part(self.photo)}{fill}+frame-{part(self.frame)}-side{self.max_side}"

    def warm(self) -> None:
        """Search a blank webcam frame and photo once, so that the first request does not pay the sessions' first
        runs."""
        blank = np.zeros((480, 640, 3), np.uint8)
        self.detect(blank)
        self.detect(blank, video_frame=True)

    def detect(self, image_bgr: np.ndarray, video_frame: bool = False) -> list[Detection]:
        """Faces in a photo (`photo`, then `fill`), or in a video frame (one pass of `frame`)."""
        height, width = image_bgr.shape[:2]
        base_scale = min(1.0, self.max_side / max(height, width))
        base = _resized(image_bgr, base_scale)
        if video_frame:
            rows = self.frame.detect(base)
        else:
            rows = self.photo.detect(base)
            if self.fill is not None:
                rows = np.concatenate([rows, self._fill_in(base, rows)])
        detections = []
        for row in rows:
            box = _clip_box(*(row[:4] / base_scale), width, height)
            if box:
                detections.append(Detection(box, float(row[-1])))
        return detections

    def _fill_in(self, base: np.ndarray, found: np.ndarray) -> np.ndarray:
        """`fill`'s rows, in the base's pixels, that overlap none of `found`'s boxes by more than `fill_overlap`."""
        rows = self._search(self.fill, _resized(base, self.fill_scale))
        rows[:, :14] /= self.fill_scale
        if len(rows) and len(found):
            rows = rows[_iou(rows[:, :4], found[:, :4]).max(axis=1) <= self.fill_overlap]
        return rows

    def _search(self, net: Network, image_bgr: np.ndarray) -> np.ndarray:
        """Rows for an image of any size: whole, or in overlapping tiles when a side is over `max_side`."""
        height, width = image_bgr.shape[:2]
        if max(height, width) <= self.max_side:
            return net.detect(image_bgr)
        overlap = self.max_side // 4
        found = []
        for y0, y1 in _spans(height, self.max_side, overlap):
            for x0, x1 in _spans(width, self.max_side, overlap):
                rows = net.detect(image_bgr[y0:y1, x0:x1])
                x, y, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
                whole = ((x0 == 0) | (x > 1)) & ((y0 == 0) | (y > 1))
                whole &= ((x1 == width) | (x + w < x1 - x0 - 1)) & ((y1 == height) | (y + h < y1 - y0 - 1))
                rows = rows[whole]
                rows[:, [0, 4, 6, 8, 10, 12]] += x0  # box and landmarks' x
                rows[:, [1, 5, 7, 9, 11, 13]] += y0
                found.append(rows)
        rows = np.concatenate(found)
        kept = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), rows[:, -1].tolist(), net.min_score, 0.3)  # a face in 2 tiles
        return rows[np.asarray(kept, dtype=np.int64).reshape(-1)]


def _resized(image_bgr: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image_bgr
    height, width = image_bgr.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image_bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _spans(length: int, tile: int, overlap: int) -> list[tuple[int, int]]:
    """Equal overlapping [start, end) spans of at most `tile` covering `length`, neighbours sharing ≥ `overlap`."""
    count = max(1, math.ceil((length - overlap) / (tile - overlap)))
    size = math.ceil((length + (count - 1) * overlap) / count)
    starts = [round(i * (length - size) / (count - 1)) for i in range(count)] if count > 1 else [0]
    return [(s, s + size) for s in starts]


def _network_name(net: Network) -> str:
    return next(name for name, (kind, path) in NETWORKS.items() if net.model_path == path)


def load_detector() -> FaceDetector:
    """The served configuration (docs/detector.md says how it was chosen)."""
    # Photos come in every size, so their networks keep no buffers between calls; frames come one size after another.
    detector = FaceDetector(photo=network("centerface", 0.3, arena=False), fill=network("yunet-n", 0.5, arena=False),
                            frame=network("yunet-s", 0.4))
    log.info("face detector: %s for photos, %s for frames (largest side %d px)", detector.name,
             _network_name(detector.frame), detector.max_side)
    return detector


def check_detector_files() -> None:
    """Open every network the server needs, so that a missing or corrupt file stops it before it forks."""
    load_detector()
