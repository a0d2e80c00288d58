"""YuNet, libfacedetection's face-detection network, run by ONNX Runtime and decoded here as OpenCV's
`cv2.FaceDetectorYN` decodes it (same boxes, landmarks and scores): ONNX Runtime spends less CPU a search than
OpenCV's DNN (docs/detector.md).

The committed ONNX file is the 2023mar release with its input's height and width left free (see its LICENSE
file), so one session takes an image of any size; the operators and weights are the release's.
"""

import math
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

YUNET_PATH = Path(__file__).with_name("face_detection_yunet_2023mar_dynamic.onnx")
STRIDES = (8, 16, 32)  # the feature maps' strides; the input is padded to a multiple of the largest
FRAME_PIXELS = 640 * 640  # inputs up to this size (webcam frames) leave their buffers in the arena for the next call


class YuNet:
    """One ONNX Runtime session, safe to call from many threads at once: it holds no input between calls.

    Its threads sleep instead of spinning between operators, so that requests on a busy server do not burn
    each other's CPU. Its buffers come from ONNX Runtime's arena, reused from call to call: without it every call
    maps and faults in fresh pages (the server's malloc returns any block over 1 MB, `web.malloc`), which undid
    the engine's gain. An input larger than `FRAME_PIXELS` (a photo's search) shrinks the arena back after
    its call, so that one large photo does not keep its buffers."""

    def __init__(self, model_path: Path, min_score: float, nms_threshold: float, top_k: int = 5000) -> None:
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        self._session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.min_score, self.nms_threshold, self.top_k = min_score, nms_threshold, top_k
        self._give_back = ort.RunOptions()
        self._give_back.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def detect(self, image_bgr: np.ndarray) -> np.ndarray:
        """Rows of (x, y, w, h, five landmarks' x and y, score) for the faces in a BGR image, best first."""
        height, width = image_bgr.shape[:2]
        padded_h, padded_w = (math.ceil(side / STRIDES[-1]) * STRIDES[-1] for side in (height, width))
        blob = np.zeros((1, 3, padded_h, padded_w), np.float32)  # zeros below and right, as OpenCV pads
        blob[0, :, :height, :width] = image_bgr.transpose(2, 0, 1)
        options = self._give_back if padded_h * padded_w > FRAME_PIXELS else None
        out = dict(zip(self._outputs, self._session.run(self._outputs, {"input": blob}, options), strict=True))
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
