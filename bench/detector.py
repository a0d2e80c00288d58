"""Detector configurations for photos and frames, by recall per class and face size on real scenes, and time.

    python -m bench.detector [--scenes ../shared/datasets/scenes-val] [--baseline REV]
        [--configs centerface@0.3+yunet-n@0.5 centerface@0.3+yunet-n@0.6x1.5 yunet-s@0.4] [--repeats 30]
        [--sheet extra.png]

A configuration is `PHOTO@SCORE[+FILL@SCORE[xSCALE]]`: the photo network and its score threshold, then the
network whose boxes are added where they overlap none of the first's (IoU ≤ 0.3), its threshold and its
magnification of the base (the photo at most 1,280 px a side). Networks: centerface, yunet-n, yunet-s. A
configuration of one network is also that network's single pass, as frames get it.

Recall is per ground-truth class and face-size band (found = IoU ≥ 0.4 with a labelled face); unmatched boxes
match no labelled face (not all are false positives: not every background face is labelled). Times are medians
in this process on decoded images made from one real photo: a 720×540 photo (scenes-val's size), a 1280×960
photo, and a 640×480 webcam frame searched by the photo network alone (one pass); `--repeats 0` skips them.
`--baseline REV` runs that build's served detector (photo and frame paths) in a child process on the same images,
in the same run, as the first row. `--sheet` saves the unmatched boxes of the last configuration that the first
(or the baseline) does not have, with their surroundings, to look at what they are.
"""

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bench.baseline import add_baseline_option, builds_at
from bench.common import median_ms, one_face_jpeg_640x480, table_header
from harness.paths import DATASETS
from model.detector import FaceDetector, network
from model.image_io import decode_image
from training.scenes import SIZE_BANDS, iou, match, read_voc

CLASSES = {"with_mask": "masked", "without_mask": "bare"}
INCORRECT = "with_incorrect_mask"
Box = tuple[int, int, int, int]


def parse_config(text: str) -> FaceDetector:
    """A detector for `PHOTO@SCORE[+FILL@SCORE[xSCALE]]`; frames get the photo network's single pass."""
    photo_part, _, fill_part = text.partition("+")
    name, score = photo_part.split("@")
    photo, frame = network(name, float(score), arena=False), network(name, float(score))  # as load_detector's
    if not fill_part:
        return FaceDetector(photo, None, frame)
    fill_name, fill_score = fill_part.split("@")
    fill_score, _, scale = fill_score.partition("x")
    fill = network(fill_name, float(fill_score), arena=False)
    return FaceDetector(photo, fill, frame, fill_scale=float(scale or 1))


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
    return table_header(["configuration", *header_cells(), "720×540 photo", "1280×960 photo", "640×480 frame"])


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


def baseline_run(tree: Path, photos: list[np.ndarray], timed: dict[str, np.ndarray], repeats: int) -> dict:
    """The build in `tree`'s served detector on the same decoded images, in a child process (bench.detector_probe)."""
    with tempfile.TemporaryDirectory(prefix="detector-bench-") as tmp:
        def saved(name: str, image: np.ndarray) -> str:
            np.save(path := Path(tmp) / f"{name}.npy", image)
            return str(path)

        request = {"photos": [saved(f"photo{i}", p) for i, p in enumerate(photos)],
                   "timed": {name: saved(name, image) for name, image in timed.items()}, "repeats": repeats}
        probe = (Path(__file__).parent / "detector_probe.py").read_text()
        result = subprocess.run([sys.executable, "-c", probe], cwd=tree, input=json.dumps(request),
                                capture_output=True, text=True, timeout=3600)
    if result.returncode:
        raise SystemExit(f"the baseline's detector failed in {tree}:\n{result.stderr}")
    answer = json.loads(result.stdout)
    answer["boxes"] = [[tuple(b) for b in boxes] for boxes in answer["boxes"]]
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    parser.add_argument("--configs", nargs="+", default=["centerface@0.3+yunet-n@0.5"])
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per image (0: no times)")
    parser.add_argument("--sheet", type=Path, help="save the last configuration's extra unmatched boxes here")
    add_baseline_option(parser)
    args = parser.parse_args()

    paths, truths_per_photo = [], []
    for xml_path in sorted((args.scenes / "annotations").glob("*.xml")):
        paths.append(next((args.scenes / "images").glob(xml_path.stem + ".*")))
        truths_per_photo.append(read_voc(xml_path))
    photos = [decode_image(p.read_bytes()) for p in paths]
    frame = decode_image(one_face_jpeg_640x480())
    timed = {"photo": cv2.resize(frame, (720, 540), interpolation=cv2.INTER_CUBIC),
             "large": cv2.resize(frame, (1280, 960), interpolation=cv2.INTER_CUBIC), "frame": frame}
    print(f"{args.scenes.name}: {len(photos)} photos, {sum(map(len, truths_per_photo))} faces; medians of "
          f"{args.repeats} calls on this machine")
    print(header())

    results = []
    with builds_at(args.baseline) as trees:
        for name, tree in trees.items():
            answer = baseline_run(tree, photos, timed, args.repeats)
            results.append(answer["boxes"])
            times = [f"{answer['times'][k]:.1f} ms" if args.repeats else "–" for k in ("photo", "large", "frame")]
            print(f"| {name} (served; frames its frame path) | "
                  f"{' | '.join(recall_cells(truths_per_photo, answer['boxes']))} | {' | '.join(times)} |", flush=True)
    for config in args.configs:
        start = time.monotonic()
        detector = parse_config(config)
        boxes = [[d.box for d in detector.detect(image)] for image in photos]
        results.append(boxes)
        times = ["–"] * 3
        if args.repeats:
            times = [f"{ms:.1f} ms" for ms in (
                median_ms(lambda d=detector: d.detect(timed["photo"]), repeats=args.repeats, warmup=3),
                median_ms(lambda d=detector: d.detect(timed["large"]), repeats=args.repeats, warmup=3),
                median_ms(lambda d=detector: d.detect(timed["frame"], video_frame=True), repeats=args.repeats,
                          warmup=3))]
        print(f"| {config} | {' | '.join(recall_cells(truths_per_photo, boxes))} | {' | '.join(times)} |  "
              f"({time.monotonic() - start:.0f} s)", flush=True)

    if args.sheet:
        extra = extra_unmatched(truths_per_photo, results[0], results[-1])
        save_sheet(photos, extra, args.sheet)
        print(f"{len(extra)} unmatched boxes of the last configuration that the first does not have: {args.sheet}")


if __name__ == "__main__":
    main()
