"""Annotated photos: the label and the box line grow with the photo, so they read the same once it is shown."""

import cv2
import numpy as np

from model.annotate import COLOURS_BGR, annotate
from model.image_io import decode_image
from model.pipeline import Face, Prediction
from tests.support import fit_on_canvas


def label_band_and_line(image: np.ndarray, face) -> tuple[int, int]:
    """Heights in pixels of the label's filled band (the run of the label colour above the box's left edge) and
    of the box's line (the run of that colour across the left edge, halfway down)."""
    x, y, w, h = face.box
    colour = np.array(COLOURS_BGR[face.prediction.label], np.uint8)
    column = (image[:y, x] == colour).all(axis=1)[::-1]
    band = int(np.argmin(column)) if not column.all() else len(column)
    row = (image[y + h // 2, max(0, x - 20) : x + 20] == colour).all(axis=1)
    return band, int(row.sum())


def photo_with_face(photo: np.ndarray, width: int) -> tuple[np.ndarray, Face]:
    """The photo on a `width`-wide frame, with a face box at the same place relative to the frame."""
    height = width * 3 // 4
    box = (width * 2 // 5, height * 2 // 5, width // 5, height // 4)
    return fit_on_canvas(photo, (width, height)), Face(box, Prediction.from_probabilities(np.array([0.1, 0.9])))


def test_label_and_line_scale_with_the_photo(group_photo):
    photo = decode_image(group_photo[0].read_bytes())
    measured = {}
    for width in (1000, 3000):
        image, face = photo_with_face(photo, width)
        measured[width] = label_band_and_line(annotate(image, [face]), face)
    band_1000, line_1000 = measured[1000]
    band_3000, line_3000 = measured[3000]
    assert band_1000 >= 0.03 * 1000  # a band of 30+ px holds text about 25 px high: readable at half size
    assert 2.5 <= band_3000 / band_1000 <= 3.5
    assert line_1000 >= 3 and line_3000 >= 2 * line_1000


def test_small_photos_keep_a_legible_minimum(app, one_face_photo):
    photo = decode_image(one_face_photo[0].read_bytes())  # 240 × 240
    faces = app.extensions["mask_pipeline"].analyze(photo).faces
    annotated = annotate(photo, faces)
    assert annotated.shape == photo.shape and not np.array_equal(annotated, photo)
    assert cv2.absdiff(annotate(photo, []), photo).max() == 0  # nothing drawn without faces
