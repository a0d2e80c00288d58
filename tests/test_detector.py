"""YuNet finds masked and bare faces in real photos, with boxes in the image's own pixels, from any thread."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import psutil
import pytest

from harness.paths import scene_photos
from model.detector import SMALL_SIDE, FaceDetector, load_detector
from model.image_io import decode_image
from training.scenes import GroundTruth, iou, match

# Two or three faces below the served configuration's figures on scenes-val (docs/detector.md), and above
# those of one scale, so that a photo search fallen back to one scale fails.
MASKED_FLOOR, BARE_FLOOR, SMALL_MASKED_FLOOR = 0.91, 0.95, 0.65


def recall_by_label(detector, photos) -> dict[str, float]:
    """Recall per label, and per label and size band as "label size" (with_mask <24, …)."""
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
            for key in (truth.label, f"{truth.label} {truth.size_band}"):
                total[key] = total.get(key, 0) + 1
                found[key] = found.get(key, 0) + (i in matched)
    return {key: found[key] / total[key] for key in total}


def test_recall_on_the_committed_photos(sample_scenes_dir):
    """24 faces, masked and bare, in group photos and camera captures: at most one missed per class."""
    recall = recall_by_label(load_detector(), scene_photos(sample_scenes_dir))
    assert recall["with_mask"] >= 0.9 and recall["without_mask"] >= 0.9, recall


def test_recall_on_real_scenes(scenes_val_dir):
    """Crowds with small faces: the photo search at several scales finds the small masked faces one scale misses."""
    recall = recall_by_label(load_detector(), scene_photos(scenes_val_dir))
    assert recall["with_mask"] >= MASKED_FLOOR and recall["without_mask"] >= BARE_FLOOR, recall
    assert recall["with_mask <24"] >= SMALL_MASKED_FLOOR, recall


def test_a_video_frame_is_searched_at_the_base_scale_only(sample_scenes_dir):
    """A frame gets exactly the boxes of a one-scale detector; a photo gets more scales, which differ somewhere."""
    detector = load_detector()
    single = FaceDetector(photo_scales=(1.0,), min_score=detector.min_score)
    differ = 0
    for path, _ in scene_photos(sample_scenes_dir):
        image = decode_image(path.read_bytes())
        frame = detector.detect(image, video_frame=True)
        assert frame == single.detect(image)
        differ += frame != detector.detect(image)
    assert differ >= 1


def test_a_large_photo_is_searched_in_tiles_without_duplicates(group_photo):
    """At 4000 px the magnified copies run in overlapping tiles: every face is found once, where the base finds it."""
    path, truths = group_photo
    image = decode_image(path.read_bytes())
    factor = 4000 / max(image.shape[:2])
    large = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    detector = load_detector()
    boxes = [d.box for d in detector.detect(large)]
    base = [d.box for d in detector.detect(large, video_frame=True)]
    scaled = [GroundTruth(tuple(round(v * factor) for v in t.box), t.label) for t in truths]
    assert len(match(scaled, boxes)) >= len(match(scaled, base))
    assert all(iou(a, b) < detector.merge_threshold for i, a in enumerate(boxes) for b in boxes[i + 1:])


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


@pytest.mark.parametrize("networks", [1, 2, 3])
def test_threads_share_the_detectors_networks_and_get_the_same_answers(group_photo, networks):
    """Threads borrow the detector's OpenCV networks, one call each at a time: concurrent calls neither collide nor
    start processes, and no more networks are made than asked for, only one of them for inputs over SMALL_SIDE."""
    image = decode_image(group_photo[0].read_bytes())
    large = cv2.resize(image, None, fx=2, fy=2)  # another input size between the calls, over SMALL_SIDE
    assert max(image.shape[:2]) <= SMALL_SIDE < max(large.shape[:2])
    detector = FaceDetector(networks=networks)
    expected = {0: detector.detect(image), 1: detector.detect(large)}
    assert expected[0] and expected[1]
    children = psutil.Process().children()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: (i % 2, detector.detect(image if i % 2 == 0 else large)), range(40)))
    assert all(answer == expected[parity] for parity, answer in answers)
    assert psutil.Process().children() == children
    any_size, small = detector.networks.made
    assert any_size == 1 and small <= networks - 1


def test_a_small_input_waits_for_no_network_a_large_one_needs():
    """A small input takes a small network while one is idle, else the one for any size; a large input only that."""
    networks = FaceDetector(networks=2).networks  # one network for any size and one small
    with networks.lend(True) as small:
        with networks.lend(True) as any_size:  # the small network is lent, so the one for any size
            assert networks.made == (1, 1) and any_size is not small
    with networks.lend(True) as again:
        assert again is small  # idle again, and taken before the one for any size
        with networks.lend(False) as large:
            assert large is any_size


def test_warming_makes_and_sizes_every_small_network():
    """The server warms its detector at start, so that its small networks do not grow its memory later."""
    detector = FaceDetector(networks=3)
    detector.warm()
    assert detector.networks.made == (0, 2)
    assert detector.detect(np.full((480, 640, 3), 200, np.uint8), video_frame=True) == []
    assert detector.networks.made == (0, 2)


def test_no_face_in_a_blank_image():
    assert load_detector().detect(np.full((480, 640, 3), 200, np.uint8)) == []
