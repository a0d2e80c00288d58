"""The pipeline turns real photos into labelled faces, one network call per image."""

import numpy as np

from model.image_io import decode_image
from model.pipeline import MaskPipeline
from tests.support import RecordingClassifier
from training.evaluate import evaluate_scenes


def test_all_faces_of_a_photo_go_through_the_network_in_one_batch(app, group_photo):
    pipeline = app.extensions["mask_pipeline"]
    counting = RecordingClassifier(pipeline.classifier)
    path, truths = group_photo
    analysis = MaskPipeline(pipeline.detector, counting).analyze(decode_image(path.read_bytes()))
    assert [len(b) for b in counting.batches] == [len(analysis.faces)] and len(analysis.faces) >= len(truths) - 1
    for face in analysis.faces:
        probs = face.prediction.probabilities
        assert set(probs) == {"with_mask", "without_mask"}
        assert abs(sum(probs.values()) - 1) < 1e-4
        assert face.prediction.confidence == max(probs.values())
        assert face.prediction.label == max(probs, key=probs.get)
    assert set(analysis.timings_ms) == {"detect", "classify"}


def test_scenes_dev_figures(app, scenes_dir):
    """End to end on all real photos of scenes-dev, by the same code that the README's figures come from.

    Detection meets the issue's targets (recall >= 0.93 overall, >= 0.90 per class). The classifier figures
    are regression floors, not the product targets: the shipped model measures crop accuracy 0.845 and
    end-to-end 0.837, short of the issue's 0.90 and 0.85 (see README, "What is not reached yet").
    """
    figures = evaluate_scenes(app.extensions["mask_pipeline"], scenes_dir)
    assert figures["faces"] == 129
    assert figures["detect_recall"] >= 0.93
    assert all(c["detect_recall"] >= 0.90 for c in figures["per_class"].values())
    assert figures["crop_accuracy"] >= 0.80
    assert figures["end_to_end_accuracy"] >= 0.80


def test_no_face_means_no_network_call(app):
    pipeline = app.extensions["mask_pipeline"]
    counting = RecordingClassifier(pipeline.classifier)
    faces = MaskPipeline(pipeline.detector, counting).analyze(np.full((240, 320, 3), 255, np.uint8)).faces
    assert faces == [] and counting.batches == []
