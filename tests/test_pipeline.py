"""The pipeline turns real photos into labelled faces, one network call per image."""

import numpy as np

from model.image_io import decode_image
from model.pipeline import MaskPipeline
from model.preprocess import crop
from tests.conftest import scene_photos
from training.evaluate import match


class CountingClassifier:
    runtime = "counting"

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def predict(self, batch):
        self.calls.append(len(batch))
        return self.inner.predict(batch)


def test_all_faces_of_a_photo_go_through_the_network_in_one_batch(app, group_photo):
    pipeline = app.extensions["mask_pipeline"]
    counting = CountingClassifier(pipeline.classifier)
    path, truths = group_photo
    analysis = MaskPipeline(pipeline.detector, counting).analyze(decode_image(path.read_bytes()))
    assert counting.calls == [len(analysis.faces)] and len(analysis.faces) >= len(truths) - 1
    for face in analysis.faces:
        probs = face.prediction.probabilities
        assert set(probs) == {"with_mask", "without_mask"}
        assert abs(sum(probs.values()) - 1) < 1e-4
        assert face.prediction.confidence == max(probs.values())
        assert face.prediction.label == max(probs, key=probs.get)
    assert set(analysis.timings_ms) == {"detect", "classify"}


def test_labels_are_right_on_real_photos(app, scenes_dir):
    """End to end on a sample of real photos: most ground-truth faces are found and labelled right."""
    pipeline = app.extensions["mask_pipeline"]
    right = total = crops_right = 0
    for path, truths in scene_photos(scenes_dir)[1::3]:
        image = decode_image(path.read_bytes())
        faces = pipeline.analyze(image).faces
        matched = match(truths, [f.box for f in faces])
        right += sum(faces[j].prediction.label == truths[i].label for i, j in matched.items())
        on_truth = pipeline.classify_crops([crop(image, t.box) for t in truths])
        crops_right += sum(p.label == t.label for p, t in zip(on_truth, truths, strict=True))
        total += len(truths)
    assert total >= 40
    assert crops_right / total >= 0.85
    assert right / total >= 0.80


def test_no_face_means_no_network_call(app):
    pipeline = app.extensions["mask_pipeline"]
    counting = CountingClassifier(pipeline.classifier)
    faces = MaskPipeline(pipeline.detector, counting).analyze(np.full((240, 320, 3), 255, np.uint8)).faces
    assert faces == [] and counting.calls == []
