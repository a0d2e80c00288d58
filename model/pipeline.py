"""Image → faces → one preprocessed batch → network → labelled faces."""

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model.classifier import SERVED_PATH, Classifier, LiteClassifier, load_card
from model.detector import FaceDetector, load_detector
from model.labels import CLASS_NAMES, decide, fold_threshold
from model.preprocess import crop, preprocess_face


@dataclass(frozen=True)
class Prediction:
    """`probabilities` have the decision threshold folded in (`model.labels.fold_threshold`): `label` is the
    larger one, `confidence` its value, never below 0.5."""

    label: str
    confidence: float
    probabilities: dict[str, float]

    @classmethod
    def from_probabilities(cls, probs: np.ndarray, without_mask_threshold: float = 0.5) -> "Prediction":
        """`probs`: the network's softmax outputs."""
        chosen = int(decide(probs, without_mask_threshold))
        folded = fold_threshold(probs, without_mask_threshold)
        return cls(CLASS_NAMES[chosen], float(folded[chosen]),
                   {n: float(p) for n, p in zip(CLASS_NAMES, folded, strict=True)})


@dataclass(frozen=True)
class Face:
    box: tuple[int, int, int, int]  # x, y, w, h in the image's pixels
    prediction: Prediction


@dataclass
class Analysis:
    faces: list[Face]
    timings_ms: dict[str, float] = field(default_factory=dict)


def reading_order(faces: list[Face]) -> list[Face]:
    """Rows from top to bottom, each from left to right: face 17 of a crowd is then found where one reads to it.

    A face joins the current row while its centre lies above the bottom of the row's first face."""
    rows: list[list[Face]] = []
    for face in sorted(faces, key=lambda f: f.box[1] + f.box[3] / 2):
        first = rows[-1][0].box if rows else None
        if first and face.box[1] + face.box[3] / 2 < first[1] + first[3]:
            rows[-1].append(face)
        else:
            rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda f: f.box[0])]


class MaskPipeline:
    def __init__(self, detector: FaceDetector, classifier: Classifier, without_mask_threshold: float = 0.5) -> None:
        self.detector = detector
        self.classifier = classifier
        self.without_mask_threshold = without_mask_threshold

    def classify_crops(self, crops: list[np.ndarray]) -> list[Prediction]:
        """All crops go through the network in one call."""
        if not crops:
            return []
        batch = np.stack([preprocess_face(c) for c in crops])
        return [Prediction.from_probabilities(p, self.without_mask_threshold) for p in self.classifier.predict(batch)]

    def analyze(self, image_bgr: np.ndarray, video_frame: bool = False) -> Analysis:
        """A photo is searched at every detector scale; a video frame at one, so that a camera keeps its rate."""
        start = time.perf_counter()
        detections = self.detector.detect(image_bgr, video_frame=video_frame)
        detected = time.perf_counter()
        predictions = self.classify_crops([crop(image_bgr, d.box) for d in detections])
        done = time.perf_counter()
        faces = reading_order([Face(d.box, p) for d, p in zip(detections, predictions, strict=True)])
        return Analysis(faces, {"detect": (detected - start) * 1000, "classify": (done - detected) * 1000})


@functools.cache
def load_pipeline(model_path: Path = SERVED_PATH) -> MaskPipeline:
    """Loaded once per process and shared by every app made in it, and by every thread: each step is thread-safe."""
    detector = load_detector()
    detector.warm()
    return MaskPipeline(detector, LiteClassifier(model_path), without_mask_threshold(model_path))


def without_mask_threshold(model_path: Path = SERVED_PATH) -> float:
    """The decision threshold chosen with the model (its card's `decision`), 0.5 for a card without one."""
    return float(load_card(model_path).get("decision", {}).get("without_mask_threshold", 0.5))
