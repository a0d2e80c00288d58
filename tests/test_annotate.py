"""Annotated photos: the label and the box line grow with the photo, so they read the same once it is shown."""

import cv2
import numpy as np

from harness.images import fit_on_canvas
from model.annotate import COLOURS_BGR, annotate, label_text, layout
from model.image_io import decode_image
from model.pipeline import Face, Prediction


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


def overlaps(a, b) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def test_a_crowd_gets_numbered_labels_that_cover_no_other_face_and_stay_inside(app, crowd_photo):
    image = decode_image(crowd_photo.read_bytes())
    faces = app.extensions["mask_pipeline"].analyze(image).faces
    assert len(faces) >= 40
    tags, line = layout(image.shape, faces)
    height, width = image.shape[:2]
    for number, (face, tag) in enumerate(zip(faces, tags, strict=True), start=1):
        assert tag.text.split()[0] == str(number)  # the number of the face's line in the list
        assert tag.text == (label_text(number, face) if tag.full else str(number))
        x, y, w, h = tag.rect
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= height, tag  # never cut off
        for other_face, other in zip(faces, tags, strict=True):
            if other is tag:
                continue
            ox, oy, ow, oh = other_face.box
            grown = (ox - line, oy - line, ow + 2 * line, oh + 2 * line)
            if not overlaps(other_face.box, face.box):  # a face inside another's box has its label inside that box
                assert not overlaps(tag.rect, grown), (tag, other_face)
            assert not overlaps(tag.rect, other.rect), (tag, other)
    assert sum(t.full for t in tags) >= len(tags) // 4  # where there is room, the whole label
    annotated = annotate(image, faces)
    for face, tag in zip(faces, tags, strict=True):  # each tag is drawn in its face's colour
        x, y, w, h = tag.rect
        assert (annotated[y + 1, x + 1] == COLOURS_BGR[face.prediction.label]).all()


def test_the_text_size_follows_the_image_not_the_crowd(app, crowd_photo):
    image = decode_image(crowd_photo.read_bytes())
    faces = app.extensions["mask_pipeline"].analyze(image).faces
    small = layout(image.shape, faces)[0]
    doubled = [Face(tuple(2 * v for v in f.box), f.prediction) for f in faces]
    large = layout((image.shape[0] * 2, image.shape[1] * 2, 3), doubled)[0]
    assert 1.8 <= large[0].rect[3] / small[0].rect[3] <= 2.2
