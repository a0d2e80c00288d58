"""CenterFace, an anchor-free face detector (one output map at stride 4), run by ONNX Runtime and decoded in NumPy.

It finds more of the small and masked faces of crowds than YuNet does (docs/detector.md). The committed file is
the release's with its input size left free (`tools.centerface_onnx`; licence in centerface.LICENSE).
"""

import math
from pathlib import Path

import cv2
import numpy as np

from model.onnx_session import OnnxSession

CENTERFACE_PATH = Path(__file__).with_name("centerface.onnx")
STRIDE = 4  # one output cell per 4×4 input pixels
PAD_TO = 32  # the input's height and width must be multiples of this


class CenterFace:
    """One session (`OnnxSession`), safe to call from many threads at once."""

    def __init__(self, model_path: Path, min_score: float, nms_threshold: float = 0.3, arena: bool = True) -> None:
        self._session = OnnxSession(model_path, arena)
        self.model_path = model_path
        self.min_score, self.nms_threshold = min_score, nms_threshold

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, five landmarks' x and y, score) for the faces in a BGR image, best first."""
        height, width = image_bgr.shape[:2]
        padded_h, padded_w = (math.ceil(side / PAD_TO) * PAD_TO for side in (height, width))
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)  # RGB, 0-255, zeros below and right
        blob[0, :, :height, :width] = image_bgr[:, :, ::-1].transpose(2, 0, 1)
        heat, size, offset, marks = self._session.run(blob).values()
        row, column = np.nonzero(heat[0, 0] >= self.min_score)
        h, w = np.exp(size[0, 0, row, column]) * STRIDE, np.exp(size[0, 1, row, column]) * STRIDE
        y = (row + offset[0, 0, row, column] + 0.5) * STRIDE - h / 2
        x = (column + offset[0, 1, row, column] + 0.5) * STRIDE - w / 2
        landmarks = marks[0][:, row, column].T  # per landmark (dy, dx) as fractions of the box
        marks_x, marks_y = x[:, None] + landmarks[:, 1::2] * w[:, None], y[:, None] + landmarks[:, 0::2] * h[:, None]
        score = heat[0, 0, row, column]
        rows = np.column_stack([x, y, w, h, np.stack([marks_x, marks_y], axis=2).reshape(-1, 10), score])
        rows = rows.astype(np.float32)
        if not len(rows):
            return rows
        kept = cv2.dnn.NMSBoxes(rows[:, :4].tolist(), score.tolist(), self.min_score, self.nms_threshold)
        return rows[np.asarray(kept, dtype=np.int64).reshape(-1)]
