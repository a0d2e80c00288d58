"""The pipeline turns real photos into labelled faces, one network call per image."""

import numpy as np
import pytest

from model.classifier import load_card
from model.image_io import decode_image
from model.labels import CLASS_NAMES, decide
from model.pipeline import MaskPipeline, Prediction
from model.preprocess import preprocess_face
from tests.support import RecordingClassifier
from training.augment import darken
from training.dataset import face_from_image, list_images, stratified_split
from training.evaluate import evaluate_scenes


def test_all_faces_of_a_photo_go_through_the_network_in_one_batch(app, group_photo):
    pipeline = app.extensions["mask_pipeline"]
    counting = RecordingClassifier(pipeline.classifier)
    path, truths = group_photo
    counted = MaskPipeline(pipeline.detector, counting, pipeline.without_mask_threshold)
    analysis = counted.analyze(decode_image(path.read_bytes()))
    assert [len(b) for b in counting.batches] == [len(analysis.faces)] and len(analysis.faces) >= len(truths) - 1
    for face in analysis.faces:
        probs = face.prediction.probabilities
        assert set(probs) == {"with_mask", "without_mask"}
        assert abs(sum(probs.values()) - 1) < 1e-4
        assert face.prediction.label == ("without_mask" if probs["without_mask"] >= 0.5 else "with_mask")
        assert face.prediction.confidence == probs[face.prediction.label] >= 0.5
    assert set(analysis.timings_ms) == {"detect", "classify"}


def test_confidence_folds_in_the_cards_threshold(app):
    """A face the network gives 0.45 `without_mask` is bare under a card's threshold of 0.4: it must not read
    "No mask 45%"; the threshold itself reads 50%. The served pipeline uses its card's threshold."""
    pipeline = app.extensions["mask_pipeline"]
    assert pipeline.without_mask_threshold == load_card()["decision"]["without_mask_threshold"]
    threshold = 0.4  # a threshold under 0.5, where the folding matters
    bare = Prediction.from_probabilities(np.array([0.55, 0.45], np.float32), threshold)
    assert bare.label == "without_mask" and bare.confidence > 0.5
    assert bare.probabilities["without_mask"] == pytest.approx(0.5 + (0.45 - threshold) * 0.5 / (1 - threshold))
    at = Prediction.from_probabilities(np.array([1 - threshold, threshold], np.float32), threshold)
    assert at.label == "without_mask" and at.confidence == pytest.approx(0.5)
    masked = Prediction.from_probabilities(np.array([0.7, 0.3], np.float32), threshold)
    assert masked.label == "with_mask" and masked.confidence == pytest.approx(1 - 0.3 * 0.5 / threshold)


def test_committed_photos_end_to_end(app, sample_scenes_dir):
    """The 15 photos a fresh clone carries, by the code of the scenes-dev figures: a floor far above chance."""
    figures = evaluate_scenes(app.extensions["mask_pipeline"], sample_scenes_dir)
    assert figures["faces"] == 24 and figures["detect_recall"] >= 0.9
    assert figures["end_to_end_accuracy"] >= 0.8


def test_scenes_dev_figures(app, scenes_dir):
    """End to end on all real photos of scenes-dev, by the code the published figures come from.

    Detection holds its target; accuracy on the ground-truth boxes and end to end hold regression floors
    just under the committed model's figures (0.962 / 0.800 on the boxes, 0.915 end to end): bare faces miss the
    0.93 target (docs/training.md).
    """
    figures = evaluate_scenes(app.extensions["mask_pipeline"], scenes_dir)
    assert figures["faces"] == 129
    assert figures["detect_recall"] >= 0.95
    assert all(c["detect_recall"] >= 0.95 for c in figures["per_class"].values())
    assert figures["per_class"]["with_mask"]["crop_accuracy"] >= 0.945
    assert figures["per_class"]["without_mask"]["crop_accuracy"] >= 0.78
    assert figures["end_to_end_accuracy"] >= 0.90


def test_scenes_val_figures(app, scenes_val_dir):
    """The photos runs and thresholds are chosen on: regression floors just under the committed model's figures
    (masked 0.954, bare 0.895 on the labelled boxes; >= 48 px 0.957 / 0.866), which miss the 0.90 target for
    bare faces by one face and the 0.95 one for bare faces >= 48 px (docs/training.md); wrongly worn masks are
    reported apart."""
    figures = evaluate_scenes(app.extensions["mask_pipeline"], scenes_val_dir)
    assert figures["per_class"]["with_mask"]["faces"] == 347 and figures["per_class"]["without_mask"]["faces"] == 171
    assert figures["per_class"]["with_mask"]["detect_recall"] >= 0.94
    assert figures["per_class"]["without_mask"]["detect_recall"] >= 0.97
    assert figures["per_class"]["with_mask"]["crop_accuracy"] >= 0.945
    assert figures["per_class"]["without_mask"]["crop_accuracy"] >= 0.885
    assert figures["by_size"][">=48"]["with_mask"]["crop_accuracy"] >= 0.95
    assert figures["by_size"][">=48"]["without_mask"]["crop_accuracy"] >= 0.85
    assert figures["with_incorrect_mask"]["faces"] == 62


def test_no_face_means_no_network_call(app):
    pipeline = app.extensions["mask_pipeline"]
    counting = RecordingClassifier(pipeline.classifier)
    faces = MaskPipeline(pipeline.detector, counting).analyze(np.full((240, 320, 3), 255, np.uint8)).faces
    assert faces == [] and counting.batches == []


@pytest.fixture(scope="module")
def test_split_faces(app, face_mask_dir) -> tuple[np.ndarray, np.ndarray]:
    """The held-out faces of the training command's own split, cropped by the serving detector."""
    files = list_images(face_mask_dir)
    _, _, test_idx = stratified_split(np.array([label for _, label in files]))
    detector = app.extensions["mask_pipeline"].detector
    faces = np.stack([preprocess_face(face_from_image(decode_image(files[i][0].read_bytes()), detector))
                      for i in test_idx])
    return faces, np.array([files[i][1] for i in test_idx])


def test_held_out_accuracy(app, test_split_faces):
    """Just under the committed model's 0.980 as served (target >= 0.97; docs/training.md)."""
    faces, labels = test_split_faces
    pipeline = app.extensions["mask_pipeline"]
    predicted = decide(pipeline.classifier.predict(faces), pipeline.without_mask_threshold)
    assert len(labels) == 599 and np.mean(predicted == labels) >= 0.975


@pytest.mark.parametrize(("exposure", "floor"), [(0.25, 0.95), (0.05, 0.89)])
def test_bare_faces_in_dim_light_are_not_called_masked(app, test_split_faces, exposure, floor):
    """A webcam in a dim room: held-out bare faces darkened; models trained without such faces called most of
    them masked (docs/training.md). Floors just under the committed model's 0.979 and 0.915."""
    faces, labels = test_split_faces
    bare = faces[labels == CLASS_NAMES.index("without_mask")][::3]
    pipeline = app.extensions["mask_pipeline"]
    predicted = decide(pipeline.classifier.predict(np.asarray(darken(bare, exposure))), pipeline.without_mask_threshold)
    assert len(bare) >= 90 and np.mean(predicted == CLASS_NAMES.index("without_mask")) >= floor


def test_masked_faces_in_dim_light_are_still_called_masked(app, test_split_faces):
    """Held-out masked faces darkened to 5%: the target is >= 0.88; the committed model reads 0.902."""
    faces, labels = test_split_faces
    masked = faces[labels == CLASS_NAMES.index("with_mask")]
    pipeline = app.extensions["mask_pipeline"]
    predicted = decide(pipeline.classifier.predict(np.asarray(darken(masked, 0.05))), pipeline.without_mask_threshold)
    assert len(masked) >= 300 and np.mean(predicted == CLASS_NAMES.index("with_mask")) >= 0.89
