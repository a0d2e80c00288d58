"""YuNet, libfacedetection's face-detection network, run by ONNX Runtime and decoded here as OpenCV's
`cv2.FaceDetectorYN` decodes it (same boxes, landmarks and scores): ONNX Runtime spends less CPU a search than
OpenCV's DNN (docs/detector.md).

Two committed files of the same family, each taking an image of any size: YuNet-s, the 2023mar release with its
input's height and width left free (see its LICENSE file), and YuNet-n, the larger model, as its authors export it.
"""

import math
from pathlib import Path

import cv2
import numpy as np

from model.onnx_session import OnnxSession

YUNET_S_PATH = Path(__file__).with_name("face_detection_yunet_2023mar_dynamic.onnx")
YUNET_N_PATH = Path(__file__).with_name("yunet_n_dynamic.onnx")
STRIDES = (8, 16, 32)  # the feature maps' strides; the input is padded to a multiple of the largest


class YuNet:
    """One session (`OnnxSession`), safe to call from many threads at once."""

    def __init__(self, model_path: Path, min_score: float, nms_threshold: float = 0.3, top_k: int = 5000,
                 arena: bool = True) -> None:
        self._session = OnnxSession(model_path, arena)
        self.model_path = model_path
        self.min_score, self.nms_threshold, self.top_k = min_score, nms_threshold, top_k

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, five landmarks' x and y, score) for the faces in a BGR image, best first."""
        height, width = image_bgr.shape[:2]
        padded_h, padded_w = (math.ceil(side / STRIDES[-1]) * STRIDES[-1] for side in (height, width))
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)  # zeros below and right, as OpenCV pads
        blob[0, :, :height, :width] = image_bgr.transpose(2, 0, 1)
        out = self._session.run(blob)
        rows = np.concatenate([self._decode(out, stride, padded_w // stride) for stride in STRIDES])
        if not len(rows):
            return rows
        boxes = rows[:, :4].astype(np.int32).tolist()  # OpenCV suppresses on whole-pixel boxes, cut towards 0
        kept = cv2.dnn.NMSBoxes(boxes, rows[:, -1].tolist(), self.min_score, self.nms_threshold, top_k=self.top_k)
        return rows[np.asarray(kept, dtype=np.int64).reshape(-1)]

    def _decode(self, out: dict[str, np.ndarray], stride: int, columns: int) -> np.ndarray:
        """The anchors of one stride whose score reaches `min_score`: one anchor a cell, offsets in strides."""
        score = np.sqrt(np.clip(out[f"cls_{stride}"][0, :, 0], 0, 1) * np.clip(out[f"obj_{stride}"][0, :, 0], 0, 1))
        found = np.flatnonzero(score >= self.min_score)
        row, column = np.divmod(found, columns)
        box, marks = out[f"bbox_{stride}"][0, found], out[f"kps_{stride}"][0, found]
        w, h = np.exp(box[:, 2]) * stride, np.exp(box[:, 3]) * stride
        x, y = (column + box[:, 0]) * stride - w / 2, (row + box[:, 1]) * stride - h / 2
        marks_x, marks_y = (marks[:, 0::2] + column[:, None]) * stride, (marks[:, 1::2] + row[:, None]) * stride
        landmarks = np.stack([marks_x, marks_y], axis=2).reshape(-1, 10)
        return np.column_stack([x, y, w, h, landmarks, score[found]]).astype(np.float32)
