"""YuNet's working size and score threshold, by recall on real scenes and time per frame.

    python -m bench.detector [--scenes ../shared/datasets/scenes-val]

Recall is per ground-truth class (a face counts as found at IoU >= 0.4); unmatched boxes are detections
that match no labelled face (not all are false positives: not every background face is labelled).
"""

import argparse
import itertools
import time
from pathlib import Path

from bench.common import DATASETS, median_ms, one_face_jpeg_640x480
from model.detector import FaceDetector
from model.image_io import decode_image
from training.evaluate import match, read_voc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    parser.add_argument("--sizes", type=int, nargs="+", default=[480, 640, 960, 1280])
    parser.add_argument("--scores", type=float, nargs="+", default=[0.4, 0.5, 0.6])
    args = parser.parse_args()

    photos = []
    for xml_path in sorted((args.scenes / "annotations").glob("*.xml")):
        image_path = next((args.scenes / "images").glob(xml_path.stem + ".*"))
        photos.append((decode_image(image_path.read_bytes()), read_voc(xml_path)))
    frame = decode_image(one_face_jpeg_640x480())
    print(f"{args.scenes.name}: {len(photos)} photos; time on a 640x480 one-face frame, this machine")
    print("| largest side | score >= | with_mask | without_mask | with_incorrect_mask | unmatched boxes | "
          "640x480 frame, median |")
    print("|---|---|---|---|---|---|---|")
    for size, score in itertools.product(args.sizes, args.scores):
        detector = FaceDetector(max_side=size, min_score=score)
        found, total, unmatched = {}, {}, 0
        start = time.monotonic()
        for image, truths in photos:
            boxes = [d.box for d in detector.detect(image)]
            matched = match(truths, boxes)
            unmatched += len(boxes) - len(matched)
            for i, truth in enumerate(truths):
                total[truth.label] = total.get(truth.label, 0) + 1
                found[truth.label] = found.get(truth.label, 0) + (i in matched)
        recalls = " | ".join(f"{found.get(k, 0) / max(1, total.get(k, 0)):.3f}"
                             for k in ("with_mask", "without_mask", "with_incorrect_mask"))
        frame_ms = median_ms(lambda d=detector: d.detect(frame), repeats=100)
        print(f"| {size} | {score:.2f} | {recalls} | {unmatched} | {frame_ms:.1f} ms |  "
              f"({time.monotonic() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
