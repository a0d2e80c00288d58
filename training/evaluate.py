"""Measuring the model: on a class-folder dataset, or end to end on real photos with PASCAL VOC face boxes.

    python -m training.evaluate --folder DIR
    python -m training.evaluate --scenes ../shared/datasets/scenes-dev --json scenes.json
"""

import argparse
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.classifier import load_classifier
from model.detector import load_detector
from model.image_io import decode_image
from model.labels import CLASS_NAMES
from model.pipeline import Face, MaskPipeline
from model.preprocess import crop
from training.dataset import load_dataset
from training.metrics import classification_report

IOU_THRESHOLD = 0.4


@dataclass(frozen=True)
class GroundTruth:
    box: tuple[int, int, int, int]
    label: str


def read_voc(path: Path) -> list[GroundTruth]:
    faces = []
    for obj in ET.parse(path).getroot().iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
        faces.append(GroundTruth((x0, y0, x1 - x0, y1 - y0), obj.findtext("name")))
    return faces


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def match(truths: list[GroundTruth], boxes: list[tuple[int, int, int, int]]) -> dict[int, int]:
    """Greedy one-to-one matching, best overlap first: ground-truth index → box index."""
    pairs = sorted(
        ((iou(t.box, b), ti, bi) for ti, t in enumerate(truths) for bi, b in enumerate(boxes)), reverse=True
    )
    matched: dict[int, int] = {}
    used: set[int] = set()
    for overlap, ti, bi in pairs:
        if overlap < IOU_THRESHOLD:
            break
        if ti not in matched and bi not in used:
            matched[ti] = bi
            used.add(bi)
    return matched


def evaluate_scenes(pipeline: MaskPipeline, scenes_dir: Path, find_faces: Callable[[Path], list[Face]] | None = None) -> dict:
    """Detection recall, classifier accuracy on ground-truth boxes, and end-to-end accuracy, per class too.

    `find_faces` maps an image file to its faces; it defaults to the in-process pipeline, and the web
    benchmark passes one that goes through the HTTP API, so that both are measured by the same code.
    """
    rows = []  # (label, detected, crop_correct, end_to_end_correct)
    for xml_path in tqdm(sorted((scenes_dir / "annotations").glob("*.xml")), desc="scenes", unit="img"):
        image_path = next((scenes_dir / "images").glob(xml_path.stem + ".*"))
        truths = read_voc(xml_path)
        image = decode_image(image_path.read_bytes())
        faces = find_faces(image_path) if find_faces else pipeline.analyze(image).faces
        matched = match(truths, [f.box for f in faces])
        on_truth = pipeline.classify_crops([crop(image, _clip(t.box, image.shape)) for t in truths])
        for ti, truth in enumerate(truths):
            found = ti in matched
            rows.append((
                truth.label,
                found,
                on_truth[ti].label == truth.label,
                found and faces[matched[ti]].prediction.label == truth.label,
            ))

    def figures(selected: list[tuple]) -> dict:
        n = len(selected) or 1
        return {
            "faces": len(selected),
            "detect_recall": sum(r[1] for r in selected) / n,
            "crop_accuracy": sum(r[2] for r in selected) / n,
            "end_to_end_accuracy": sum(r[3] for r in selected) / n,
        }

    result = figures(rows)
    result["images"] = len(list((scenes_dir / "annotations").glob("*.xml")))
    result["detector"] = pipeline.detector.name
    result["per_class"] = {name: figures([r for r in rows if r[0] == name]) for name in CLASS_NAMES}
    return result


def _clip(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    return x0, y0, min(shape[1], x + w) - x0, min(shape[0], y + h) - y0


def evaluate_folder(pipeline: MaskPipeline, folder: Path, crop_with_detector: bool) -> dict:
    dataset = load_dataset(folder, pipeline.detector if crop_with_detector else None)
    probabilities = np.concatenate(
        [pipeline.classifier.predict(dataset.x[i : i + 256]) for i in range(0, len(dataset.x), 256)]
    )
    report = classification_report(dataset.y, probabilities.argmax(axis=1))
    report["skipped"] = dataset.skipped
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", type=Path, help="class sub-folders with_mask/ and without_mask/")
    source.add_argument("--scenes", type=Path, help="images/ and PASCAL VOC annotations/")
    parser.add_argument("--runtime", choices=["keras", "tflite"], default="keras")
    parser.add_argument("--model", type=Path, help="model file (default: the committed one for the runtime)")
    parser.add_argument("--whole-images", action="store_true", help="--folder: classify whole images, no detector crop")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    pipeline = MaskPipeline(load_detector(), load_classifier(args.runtime, args.model))
    if args.scenes:
        result = evaluate_scenes(pipeline, args.scenes)
    else:
        result = evaluate_folder(pipeline, args.folder, crop_with_detector=not args.whole_images)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
