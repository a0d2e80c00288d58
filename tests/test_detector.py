"""YuNet finds masked and bare faces in real photos, with boxes in the image's own pixels, from any thread."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import psutil

from harness.paths import scene_photos
from model.detector import FaceDetector, load_detector
from model.image_io import decode_image
from training.evaluate import match


def recall_by_label(detector, photos) -> dict[str, float]:
    found: dict[str, int] = {}
    total: dict[str, int] = {}
    for path, truths in photos:
        image = decode_image(path.read_bytes())
        detections = detector.detect(image)
        for d in detections:
            x, y, w, h = d.box
            assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
            assert 0.0 <= d.score <= 1.0
        matched = match(truths, [d.box for d in detections])
        for i, truth in enumerate(truths):
            total[truth.label] = total.get(truth.label, 0) + 1
            found[truth.label] = found.get(truth.label, 0) + (i in matched)
    return {label: found[label] / total[label] for label in total}


def test_recall_on_the_committed_photos(sample_scenes_dir):
    """24 faces, masked and bare, in group photos and camera captures: at most one missed per class."""
    recall = recall_by_label(load_detector(), scene_photos(sample_scenes_dir))
    assert recall["with_mask"] >= 0.9 and recall["without_mask"] >= 0.9, recall


def test_recall_on_real_scenes(scenes_val_dir):
    recall = recall_by_label(load_detector(), scene_photos(scenes_val_dir))
    assert recall["with_mask"] >= 0.88 and recall["without_mask"] >= 0.92, recall


def test_recall_on_the_measuring_photos(scenes_dir):
    recall = recall_by_label(load_detector(), scene_photos(scenes_dir))
    assert recall["with_mask"] >= 0.95 and recall["without_mask"] >= 0.95, recall


def test_boxes_are_in_original_pixels_after_downscaling(one_face_photo):
    """A photo twice the working size is detected on a copy at that size, yet its box comes back in its own pixels."""
    image = decode_image(one_face_photo[0].read_bytes())
    detector = load_detector()
    side = detector.max_side
    base = cv2.resize(image, (side, round(side * image.shape[0] / image.shape[1])))
    big = cv2.resize(base, None, fx=2, fy=2)
    base_box = np.array(detector.detect(base)[0].box)
    big_box = np.array(detector.detect(big)[0].box)
    assert np.allclose(big_box, base_box * 2, atol=6)


def test_threads_share_one_detector_and_get_the_same_answers(group_photo):
    """Threads take turns on one OpenCV network, so concurrent calls neither collide nor start processes."""
    image = decode_image(group_photo[0].read_bytes())
    small = cv2.resize(image, None, fx=0.5, fy=0.5)  # another input size between the calls
    detector = FaceDetector()
    expected = {0: detector.detect(image), 1: detector.detect(small)}
    assert expected[0] and expected[1]
    children = psutil.Process().children()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: (i % 2, detector.detect(image if i % 2 == 0 else small)), range(40)))
    assert all(answer == expected[parity] for parity, answer in answers)
    assert psutil.Process().children() == children


def test_no_face_in_a_blank_image():
    assert load_detector().detect(np.full((480, 640, 3), 200, np.uint8)) == []
