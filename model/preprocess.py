"""The one preprocessing step that training and serving share, so a face reaches the network the same way."""

import cv2
import numpy as np

INPUT_SIZE = 100
INPUT_SHAPE = (INPUT_SIZE, INPUT_SIZE, 1)


def preprocess_face(face_bgr: np.ndarray) -> np.ndarray:
    """BGR crop → grayscale 100×100 float32 in [0, 1], shape (100, 100, 1)."""
    gray = cv2.cvtColor(face_bgr, cv2.COLOR_BGR2GRAY)
    resized = cv2.resize(gray, (INPUT_SIZE, INPUT_SIZE))
    return to_unit_range(resized)[..., np.newaxis]


def to_unit_range(levels: np.ndarray) -> np.ndarray:
    """8-bit grey levels → float32 in [0, 1]; the training cache stores faces as levels and reads them back here."""
    return levels.astype(np.float32) / 255.0


def crop(image_bgr: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The pixels inside an (x, y, w, h) box that is already clipped to the image."""
    x, y, w, h = box
    return image_bgr[y : y + h, x : x + w]
