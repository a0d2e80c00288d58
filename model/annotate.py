"""Drawing boxes, labels and confidences on a copy of the image."""

import cv2
import numpy as np

from model.pipeline import Face

COLOURS_BGR = {"with_mask": (60, 160, 40), "without_mask": (40, 40, 220)}  # green, red
LABEL_TEXT = {"with_mask": "Mask", "without_mask": "No mask"}


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    out = image_bgr.copy()
    scale = max(0.4, max(out.shape[:2]) / 1000)
    thickness = max(1, round(2 * scale))
    for face in faces:
        x, y, w, h = face.box
        colour = COLOURS_BGR[face.prediction.label]
        text = f"{LABEL_TEXT[face.prediction.label]} {face.prediction.confidence:.0%}"
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, thickness)
        top = y - th - baseline - 4 if y - th - baseline - 4 >= 0 else y + h
        cv2.rectangle(out, (x, top), (x + tw + 6, top + th + baseline + 4), colour, cv2.FILLED)
        cv2.putText(out, text, (x + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255),
                    thickness, cv2.LINE_AA)
    return out
