"""One preprocessing function: a face reaches the network the same way in training and in serving."""

import cv2
import numpy as np

from model.detector import load_detector
from model.image_io import decode_image
from model.pipeline import MaskPipeline
from model.preprocess import preprocess_face
from tests.support import RecordingClassifier
from training.dataset import face_from_image


def test_preprocess_face_shape_range_and_grayscale():
    face = np.zeros((37, 53, 3), np.uint8)
    face[:, :, 2] = 255  # pure red
    out = preprocess_face(face)
    assert out.shape == (100, 100, 1) and out.dtype == np.float32
    expected = cv2.cvtColor(face, cv2.COLOR_BGR2GRAY)[0, 0] / 255.0
    assert np.allclose(out, expected) and 0.0 <= out.min() <= out.max() <= 1.0


def test_training_loader_and_serving_pipeline_feed_identical_arrays(one_face_photo, app):
    path, _ = one_face_photo
    pipeline = app.extensions["mask_pipeline"]
    detector = load_detector()

    training_array = preprocess_face(face_from_image(decode_image(path.read_bytes()), detector))

    recorder = RecordingClassifier(pipeline.classifier)
    faces = MaskPipeline(detector, recorder).analyze(decode_image(path.read_bytes())).faces
    assert len(faces) == 1
    assert len(recorder.batches) == 1 and recorder.batches[0].shape == (1, 100, 100, 1)
    assert np.array_equal(recorder.batches[0][0], training_array)
