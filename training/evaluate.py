"""Measuring the model: on a class-folder dataset, or end to end on real photos with PASCAL VOC face boxes.

    python -m training.evaluate --folder DIR
    python -m training.evaluate --scenes ../shared/datasets/scenes-val --json scenes.json
    python -m training.evaluate --scenes ../shared/datasets/scenes-val --model model/mask_cnn.int8.tflite \
        --against model/mask_cnn.tflite        # the faces whose label differs between two exports
"""

import argparse
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.classifier import SERVED_PATH, Classifier, LiteClassifier
from model.detector import load_detector
from model.image_io import decode_image
from model.labels import CLASS_NAMES, decide
from model.pipeline import Face, MaskPipeline, without_mask_threshold
from model.preprocess import crop, preprocess_face
from training.dataset import load_dataset
from training.keras_classifier import KerasClassifier
from training.metrics import classification_report, plot_contact_sheet
from training.scenes import SIZE_BANDS, clip, match, read_voc, scene_files

INCORRECT = "with_incorrect_mask"


def evaluate_scenes(pipeline: MaskPipeline, scenes_dir: Path, find_faces: Callable[[Path], list[Face]] | None = None,
                    misread: list[tuple[np.ndarray, str, str]] | None = None) -> dict:
    """Detection recall, classifier accuracy on ground-truth boxes, and end-to-end accuracy, per class and by
    face size; faces with a wrongly worn mask are reported apart (the share the model calls `without_mask`).

    `find_faces` maps an image file to its faces; it defaults to the in-process pipeline, and the web
    benchmark passes one that goes through the HTTP API, so that both are measured by the same code.
    `misread`, when given, collects (crop, truth, prediction) for each two-class face misread on its labelled box.
    """
    rows = []  # (label, size band, detected, label on the ground-truth box, label end to end or None)
    pairs = scene_files(scenes_dir)
    for image_path, xml_path in tqdm(pairs, desc="scenes", unit="img"):
        truths = read_voc(xml_path)
        image = decode_image(image_path.read_bytes())
        faces = find_faces(image_path) if find_faces else pipeline.analyze(image).faces
        matched = match(truths, [f.box for f in faces])
        boxes = [clip(t.box, image.shape) for t in truths]
        on_truth = pipeline.classify_crops([crop(image, b) for b in boxes if min(b[2:]) > 0])
        labels = iter(p.label for p in on_truth)
        for ti, truth in enumerate(truths):
            found = ti in matched
            on_box = next(labels) if min(boxes[ti][2:]) > 0 else None
            rows.append((truth.label, truth.size_band, found, on_box,
                         faces[matched[ti]].prediction.label if found else None))
            if misread is not None and on_box and truth.label in CLASS_NAMES and on_box != truth.label:
                misread.append((crop(image, boxes[ti]), truth.label, on_box))

    def figures(selected: list[tuple]) -> dict:
        n = len(selected) or 1
        return {
            "faces": len(selected),
            "detect_recall": sum(r[2] for r in selected) / n,
            "crop_accuracy": sum(r[3] == r[0] for r in selected) / n,
            "end_to_end_accuracy": sum(r[4] == r[0] for r in selected) / n,
        }

    two_class = [r for r in rows if r[0] in CLASS_NAMES]
    incorrect = [r for r in rows if r[0] == INCORRECT]
    result = figures(two_class)
    result["images"] = len(pairs)
    result["detector"] = pipeline.detector.name
    result["per_class"] = {name: figures([r for r in two_class if r[0] == name]) for name in CLASS_NAMES}
    result["by_size"] = {
        band: {name: figures([r for r in two_class if r[0] == name and r[1] == band]) for name in CLASS_NAMES}
        for band in SIZE_BANDS
    }
    found = [r for r in incorrect if r[2]]
    result[INCORRECT] = {
        "faces": len(incorrect),
        "detect_recall": len(found) / (len(incorrect) or 1),
        "called_without_mask_on_ground_truth_boxes":
            sum(r[3] == "without_mask" for r in incorrect) / (len(incorrect) or 1),
        "called_without_mask_end_to_end": sum(r[4] == "without_mask" for r in found) / (len(found) or 1),
    }
    return result


def summary(result: dict) -> str:
    """The scene figures as a table: two-class figures per class and size, then the wrongly worn masks."""
    lines = ["| faces | class | n | detection recall | accuracy on ground-truth boxes | end to end |",
             "|---|---|---|---|---|---|"]
    groups = [("all", result["per_class"])] + [(f"{band} px", by) for band, by in result["by_size"].items()]
    for group, by_class in groups:
        for name, f in by_class.items():
            lines.append(f"| {group} | {name} | {f['faces']} | {f['detect_recall']:.3f} | {f['crop_accuracy']:.3f} | "
                         f"{f['end_to_end_accuracy']:.3f} |")
    w = result[INCORRECT]
    lines.append(f"\n{INCORRECT}: {w['faces']} faces, detection recall {w['detect_recall']:.3f}; called without_mask "
                 f"on ground-truth boxes {w['called_without_mask_on_ground_truth_boxes']:.3f}, end to end "
                 f"{w['called_without_mask_end_to_end']:.3f}")
    return "\n".join(lines)


def compare_scenes(pipeline: MaskPipeline, other: MaskPipeline, scenes_dir: Path) -> dict:
    """The faces whose label differs between two models, each at its card's threshold, per class and face size:
    on the labelled boxes, and on the detected faces matched to one (the same detector's boxes for both).
    Also each model's accuracy on the labelled boxes and the largest difference of a probability."""
    rows = []  # (label, size band, on box: first, other, end to end: first, other or None)
    largest = 0.0
    for image_path, xml_path in tqdm(scene_files(scenes_dir), desc="scenes", unit="img"):
        truths = [t for t in read_voc(xml_path) if t.label in CLASS_NAMES]
        image = decode_image(image_path.read_bytes())
        boxes = [clip(t.box, image.shape) for t in truths]
        kept = [i for i, b in enumerate(boxes) if min(b[2:]) > 0]
        detected = [d.box for d in pipeline.detector.detect(image)]
        matched = match(truths, detected)
        crops = ([crop(image, boxes[i]) for i in kept]
                 + [crop(image, detected[matched[i]]) for i in kept if i in matched])
        if not crops:
            continue
        batch = np.stack([preprocess_face(c) for c in crops])
        first, second = pipeline.classifier.predict(batch), other.classifier.predict(batch)
        largest = max(largest, float(np.abs(first - second).max()))
        labels = [decide(first, pipeline.without_mask_threshold), decide(second, other.without_mask_threshold)]
        on_detected = iter(range(len(kept), len(crops)))
        for n, i in enumerate(kept):
            end_to_end = None
            if i in matched:
                k = next(on_detected)
                end_to_end = (labels[0][k], labels[1][k])
            rows.append((truths[i].label, truths[i].size_band, labels[0][n], labels[1][n], end_to_end))

    def figures(selected: list[tuple]) -> dict:
        truth = [CLASS_NAMES.index(r[0]) for r in selected]
        found = [r[4] for r in selected if r[4] is not None]
        return {
            "faces": len(selected),
            "changed_on_labelled_boxes": sum(int(r[2] != r[3]) for r in selected),
            "accuracy": sum(int(r[2] == t) for r, t in zip(selected, truth, strict=True)) / (len(selected) or 1),
            "other_accuracy": sum(int(r[3] == t) for r, t in zip(selected, truth, strict=True)) / (len(selected) or 1),
            "detected": len(found),
            "changed_end_to_end": sum(int(a != b) for a, b in found),
        }

    return {
        "all": figures(rows),
        "largest_probability_difference": largest,
        "per_class": {name: figures([r for r in rows if r[0] == name]) for name in CLASS_NAMES},
        "by_size": {band: {name: figures([r for r in rows if r[0] == name and r[1] == band]) for name in CLASS_NAMES}
                    for band in SIZE_BANDS},
    }


def comparison_summary(result: dict, first: str, other: str) -> str:
    lines = [f"| faces | class | n | labels changed on labelled boxes | accuracy, {first} | accuracy, {other} | "
             "detected | labels changed end to end |", "|---|---|---|---|---|---|---|---|"]
    groups = [("all", result["per_class"])] + [(f"{band} px", by) for band, by in result["by_size"].items()]
    for group, by_class in groups:
        for name, f in by_class.items():
            lines.append(f"| {group} | {name} | {f['faces']} | {f['changed_on_labelled_boxes']} | "
                         f"{f['accuracy']:.3f} | {f['other_accuracy']:.3f} | {f['detected']} | "
                         f"{f['changed_end_to_end']} |")
    a = result["all"]
    lines.append(f"\nall {a['faces']} faces: {a['changed_on_labelled_boxes']} changed on labelled boxes, "
                 f"{a['changed_end_to_end']} of {a['detected']} detected end to end; largest probability difference "
                 f"{result['largest_probability_difference']:.4f}")
    return "\n".join(lines)


def evaluate_folder(pipeline: MaskPipeline, folder: Path) -> dict:
    dataset = load_dataset(folder, pipeline.detector)
    probabilities = np.concatenate(
        [pipeline.classifier.predict(dataset.x[i : i + 256]) for i in range(0, len(dataset.x), 256)]
    )
    report = classification_report(dataset.y, decide(probabilities, pipeline.without_mask_threshold))
    report["skipped"] = dataset.skipped
    return report


def load_classifier(path: Path) -> Classifier:
    return KerasClassifier.load(path) if path.suffix == ".keras" else LiteClassifier(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--folder", type=Path, help="class sub-folders with_mask/ and without_mask/")
    source.add_argument("--scenes", type=Path, help="images/ and PASCAL VOC annotations/")
    parser.add_argument("--model", type=Path, default=SERVED_PATH,
                        help="a .tflite export (the default: the int8 one, as served) or a .keras file, "
                             "its card beside it")
    parser.add_argument("--against", type=Path,
                        help="--scenes: count the faces whose label differs between --model and this model instead")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--contact-sheet", type=Path, help="--scenes: save the faces misread on their labelled boxes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    detector = load_detector()
    pipeline = MaskPipeline(detector, load_classifier(args.model), without_mask_threshold(args.model))
    if args.scenes and args.against:
        other = MaskPipeline(detector, load_classifier(args.against), without_mask_threshold(args.against))
        result = compare_scenes(pipeline, other, args.scenes)
        print(comparison_summary(result, args.model.name, args.against.name))
    elif args.scenes:
        misread: list[tuple[np.ndarray, str, str]] = []
        result = evaluate_scenes(pipeline, args.scenes, misread=misread)
        print(summary(result))
        if args.contact_sheet:
            plot_contact_sheet(misread, args.contact_sheet, f"misread on labelled boxes, {args.scenes.name}")
    else:
        result = evaluate_folder(pipeline, args.folder)
        print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
