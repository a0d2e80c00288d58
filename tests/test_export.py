"""The LiteRT export the server runs gives the trained Keras model's probabilities, without TensorFlow."""

import json
import os
import subprocess
import sys

import numpy as np

from model.classifier import KERAS_PATH, TFLITE_PATH, KerasClassifier, LiteClassifier
from model.image_io import decode_image
from model.preprocess import crop, preprocess_face
from tests.support import ROOT, scene_photos


def test_keras_and_litert_agree_within_1e_4_on_real_faces(sample_scenes_dir, sample_faces_dir):
    faces = [
        preprocess_face(crop(image, truth.box))
        for path, truths in scene_photos(sample_scenes_dir)
        for image in [decode_image(path.read_bytes())]
        for truth in truths
    ] + [preprocess_face(decode_image(path.read_bytes())) for path in sorted(sample_faces_dir.glob("*/*"))]
    batch = np.stack(faces)
    keras_probs = KerasClassifier.load(KERAS_PATH).predict(batch)
    lite = LiteClassifier(TFLITE_PATH)
    lite_probs = lite.predict(batch)
    assert len(batch) >= 40
    assert np.abs(keras_probs - lite_probs).max() <= 1e-4
    one_by_one = np.concatenate([lite.predict(face[np.newaxis]) for face in batch[:5]])
    assert np.abs(one_by_one - lite_probs[:5]).max() <= 1e-5  # resizing the interpreter changes nothing


SERVER_SCRIPT = """
import json, sys
import psutil
from app import app
response = app.test_client().post("/api/detect", data=open(sys.argv[1], "rb").read(), content_type="image/jpeg")
print(json.dumps({"faces": response.get_json()["faces"], "runtime": app.test_client().get("/api/model").get_json()["serving"]["runtime"],
                  "tensorflow_loaded": any(m == "tensorflow" or m.startswith(("tensorflow.", "keras")) for m in sys.modules),
                  "child_processes": len(psutil.Process().children(recursive=True))}))
"""


def test_the_app_answers_without_importing_tensorflow_or_starting_a_process(one_face_photo):
    path, truths = one_face_photo
    result = subprocess.run([sys.executable, "-c", SERVER_SCRIPT, str(path)], cwd=ROOT, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["runtime"] == "tflite" and not served["tensorflow_loaded"] and served["child_processes"] == 0
    assert [f["label"] for f in served["faces"]] == [t.label for t in truths]
