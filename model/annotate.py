"""Drawing boxes, labels and confidences on a copy of the image."""

import cv2
import numpy as np

from model.pipeline import Face

COLOURS_BGR = {"with_mask": (60, 160, 40), "without_mask": (40, 40, 220)}  # green, red
LABEL_TEXT = {"with_mask": "Mask", "without_mask": "No mask"}
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_HEIGHT = 0.025  # of the image's longer side: photos are seen shrunk to a screen, whatever their resolution
MIN_TEXT_PX = 12


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    out = image_bgr.copy()
    text_px = max(MIN_TEXT_PX, round(max(out.shape[:2]) * TEXT_HEIGHT))
    thickness = max(2, round(text_px / 8))
    font_scale = cv2.getFontScaleFromHeight(FONT, text_px, thickness)
    pad = max(2, text_px // 4)
    for face in faces:
        x, y, w, h = face.box
        colour = COLOURS_BGR[face.prediction.label]
        text = f"{LABEL_TEXT[face.prediction.label]} {face.prediction.confidence:.0%}"
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        (tw, th), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
        band = th + baseline + 2 * pad
        top = y - band if y >= band else y  # above the box, or inside its top edge at the image's top
        cv2.rectangle(out, (x, top), (x + tw + 2 * pad, top + band), colour, cv2.FILLED)
        cv2.putText(out, text, (x + pad, top + pad + th), FONT, font_scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
