"""YuNet's photo configurations (scales, score, merging), by recall per class and face size on real scenes, and time.

    python -m bench.detector [--scenes ../shared/datasets/scenes-val] [--scales 1 1,2] [--scores 0.5]
        [--merges 0.3] [--others same] [--repeats 100] [--sheet extra.png]

Each configuration is a set of magnifications of the base image (the photo at most 1,280 px a side), a score
threshold, the IoU above which boxes of different scales are merged, and the score that boxes found at scales
other than the base must reach. Recall is per ground-truth class and face-size band (found = IoU >= 0.4 with a
labelled face); unmatched boxes match no labelled face (not all are false positives: not every background face
is labelled). Times are medians in this process on decoded images: the webcam page's 480×360 frame (the single
scale frames take), a 720×540 photo (the size of scenes-val's photos) and a 4000×3000 photo (a phone upload),
each made from one real photo; `--repeats 0` skips them; the first configuration given is the baseline of
the same run. `--sheet` saves the unmatched boxes of the last configuration that the first one does not
have, with their surroundings, to look at what they are.
"""

import argparse
import itertools
import math
import time
from pathlib import Path

import cv2
import numpy as np

from bench.common import median_ms, one_face_jpeg_640x480, table_header
from harness.paths import DATASETS
from model.detector import FaceDetector
from model.image_io import decode_image
from training.scenes import SIZE_BANDS, iou, match, read_voc

CLASSES = {"with_mask": "masked", "without_mask": "bare"}
INCORRECT = "with_incorrect_mask"
Box = tuple[int, int, int, int]


def recall_cells(truths_per_photo: list[list], boxes_per_photo: list[list[Box]]) -> list[str]:
    """Recall per class and size band, then over each class, wrongly worn masks, and the unmatched boxes."""
    found: dict[tuple[str, str], int] = {}
    total: dict[tuple[str, str], int] = {}
    unmatched = 0
    for truths, boxes in zip(truths_per_photo, boxes_per_photo, strict=True):
        matched = match(truths, boxes)
        unmatched += len(boxes) - len(matched)
        for i, truth in enumerate(truths):
            for key in ((truth.label, truth.size_band), (truth.label, "all")):
                total[key] = total.get(key, 0) + 1
                found[key] = found.get(key, 0) + (i in matched)

    def cell(key: tuple[str, str]) -> str:
        return f"{found[key] / total[key]:.3f}" if total.get(key) else "–"

    bands = [*SIZE_BANDS, "all"]
    return [cell((label, band)) for label in CLASSES for band in bands] + [cell((INCORRECT, "all")), str(unmatched)]


def header_cells() -> list[str]:
    """The headings of `recall_cells`' columns."""
    bands = ["< 24", "24–47", "≥ 48", "all"]
    return [*(f"{short} {band}" for short in CLASSES.values() for band in bands), "wrong mask", "unmatched boxes"]


def header() -> str:
    columns = ["scales", "score ≥", "merge IoU", "other scales' score ≥", *header_cells(),
               "480×360 frame", "720×540 photo", "4000×3000 photo"]
    return table_header(columns)


def extra_unmatched(truths_per_photo: list[list], first: list[list[Box]],
                    last: list[list[Box]]) -> list[tuple[int, Box]]:
    """(photo index, box) of the last configuration's unmatched boxes that overlap none of the first's (IoU < 0.4)."""
    extra = []
    for index, (truths, old, new) in enumerate(zip(truths_per_photo, first, last, strict=True)):
        old_unmatched = [b for i, b in enumerate(old) if i not in set(match(truths, old).values())]
        used = set(match(truths, new).values())
        for i, box in enumerate(new):
            if i not in used and all(iou(box, o) < 0.4 for o in old_unmatched):
                extra.append((index, box))
    return extra


def save_sheet(photos: list[np.ndarray], boxes: list[tuple[int, Box]], path: Path, cell: int = 120,
               columns: int = 12) -> None:
    """Each box drawn on its surroundings (twice its size around it), cell × cell, with its shorter side in px."""
    rows = max(1, math.ceil(len(boxes) / columns))
    sheet = np.full((rows * (cell + 16), columns * cell, 3), 255, np.uint8)
    for n, (index, (x, y, w, h)) in enumerate(boxes):
        image = photos[index]
        side = max(w, h) * 2
        cx, cy = x + w // 2, y + h // 2
        x0, y0 = max(0, cx - side), max(0, cy - side)
        x1, y1 = min(image.shape[1], cx + side), min(image.shape[0], cy + side)
        view = image[y0:y1, x0:x1].copy()
        cv2.rectangle(view, (x - x0, y - y0), (x - x0 + w, y - y0 + h), (0, 0, 255), max(1, side // 60))
        scale = cell / max(view.shape[:2])
        view = cv2.resize(view, (max(1, round(view.shape[1] * scale)), max(1, round(view.shape[0] * scale))))
        top, left = (n // columns) * (cell + 16), (n % columns) * cell
        sheet[top:top + view.shape[0], left:left + view.shape[1]] = view
        cv2.putText(sheet, f"#{n} {min(w, h)}px", (left + 2, top + cell + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1)
    cv2.imwrite(str(path), sheet)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    parser.add_argument("--scales", nargs="+", default=["1", "1,1.5", "1,2"],
                        help="comma-separated magnifications of the base image, one set per configuration")
    parser.add_argument("--scores", type=float, nargs="+", default=[0.5])
    parser.add_argument("--merges", type=float, nargs="+", default=[0.3])
    parser.add_argument("--others", nargs="+", default=["same"],
                        help="score that boxes from scales other than the base need, or same (the score threshold)")
    parser.add_argument("--repeats", type=int, default=100, help="timed calls per image (0: no times)")
    parser.add_argument("--sheet", type=Path, help="save the last configuration's extra unmatched boxes here")
    args = parser.parse_args()

    paths, truths_per_photo = [], []
    for xml_path in sorted((args.scenes / "annotations").glob("*.xml")):
        paths.append(next((args.scenes / "images").glob(xml_path.stem + ".*")))
        truths_per_photo.append(read_voc(xml_path))
    photos = [decode_image(p.read_bytes()) for p in paths]
    frame = decode_image(one_face_jpeg_640x480())
    timed = {
        "webcam": cv2.resize(frame, (480, 360), interpolation=cv2.INTER_AREA),
        "photo": cv2.resize(frame, (720, 540), interpolation=cv2.INTER_CUBIC),
        "large": cv2.resize(frame, (4000, 3000), interpolation=cv2.INTER_CUBIC),
    }
    faces = sum(map(len, truths_per_photo))
    print(f"{args.scenes.name}: {len(photos)} photos, {faces} faces; times on this machine, {cv2.getNumThreads()} "
          f"OpenCV threads")
    print(header())

    results = []
    for scales, score, merge, other in itertools.product(args.scales, args.scores, args.merges, args.others):
        start = time.monotonic()
        detector = FaceDetector(min_score=score, photo_scales=tuple(float(s) for s in scales.split(",")),
                                merge_threshold=merge, other_min_score=None if other == "same" else float(other))
        boxes = [[d.box for d in detector.detect(image)] for image in photos]
        results.append(boxes)
        times = ["–"] * 3
        if args.repeats:
            medians = [
                median_ms(lambda d=detector: d.detect(timed["webcam"], video_frame=True), repeats=args.repeats),
                median_ms(lambda d=detector: d.detect(timed["photo"]), repeats=args.repeats),
                median_ms(lambda d=detector: d.detect(timed["large"]), repeats=max(3, args.repeats // 3), warmup=3),
            ]
            times = [f"{ms:.1f} ms" for ms in medians]
        merge_cell = f"{merge:g}" if "," in scales else "–"
        other_cell = f"{detector.other_min_score:.2f}" if "," in scales else "–"
        print(f"| {scales.replace(',', ' + ')} | {score:.2f} | {merge_cell} | {other_cell} | "
              f"{' | '.join(recall_cells(truths_per_photo, boxes))} | {' | '.join(times)} |  "
              f"({time.monotonic() - start:.0f} s)", flush=True)

    if args.sheet:
        extra = extra_unmatched(truths_per_photo, results[0], results[-1])
        save_sheet(photos, extra, args.sheet)
        print(f"{len(extra)} unmatched boxes of the last configuration that the first does not have: {args.sheet}")


if __name__ == "__main__":
    main()
