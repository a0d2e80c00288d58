"""The lean mode (LiteRT, no TensorFlow) gives the Keras model's probabilities on real faces."""

import json
import os
import subprocess
import sys

import numpy as np

from model.classifier import TFLITE_PATH, LiteClassifier
from model.image_io import decode_image
from model.preprocess import crop, preprocess_face
from tests.support import ROOT, scene_photos


def test_keras_and_litert_agree_within_1e_4_on_real_faces(app, sample_scenes_dir, sample_faces_dir):
    faces = [
        preprocess_face(crop(image, truth.box))
        for path, truths in scene_photos(sample_scenes_dir)
        for image in [decode_image(path.read_bytes())]
        for truth in truths
    ] + [preprocess_face(decode_image(path.read_bytes())) for path in sorted(sample_faces_dir.glob("*/*"))]
    batch = np.stack(faces)
    keras_probs = app.extensions["mask_pipeline"].classifier.predict(batch)
    lite = LiteClassifier(TFLITE_PATH)
    lite_probs = lite.predict(batch)
    assert len(batch) >= 40
    assert np.abs(keras_probs - lite_probs).max() <= 1e-4
    one_by_one = np.concatenate([lite.predict(face[np.newaxis]) for face in batch[:5]])
    assert np.abs(one_by_one - lite_probs[:5]).max() <= 1e-5  # resizing the interpreter changes nothing


LEAN_SCRIPT = """
import json, sys
import psutil
from app import create_app
from config import Settings
app = create_app(Settings(model_runtime="tflite"))
response = app.test_client().post("/api/detect", data=open(sys.argv[1], "rb").read(), content_type="image/jpeg")
print(json.dumps({"faces": response.get_json()["faces"], "runtime": app.test_client().get("/api/model").get_json()["serving"]["runtime"],
                  "tensorflow_loaded": any(m == "tensorflow" or m.startswith(("tensorflow.", "keras")) for m in sys.modules),
                  "child_processes": len(psutil.Process().children(recursive=True))}))
"""


def test_lean_app_serves_the_same_answer_without_importing_tensorflow_or_starting_a_process(client, one_face_photo):
    path = one_face_photo[0]
    result = subprocess.run([sys.executable, "-c", LEAN_SCRIPT, str(path)], cwd=ROOT, env={**os.environ, "MODEL_RUNTIME": "tflite"},
                            capture_output=True, text=True, timeout=120, check=True)
    lean = json.loads(result.stdout.strip().splitlines()[-1])
    assert lean["runtime"] == "tflite" and not lean["tensorflow_loaded"] and lean["child_processes"] == 0
    default = client.post("/api/detect", data=path.read_bytes(), content_type="image/jpeg").get_json()
    assert [f["box"] for f in lean["faces"]] == [f["box"] for f in default["faces"]]
    assert [f["label"] for f in lean["faces"]] == [f["label"] for f in default["faces"]]
    for a, b in zip(lean["faces"], default["faces"], strict=True):
        assert abs(a["confidence"] - b["confidence"]) <= 1e-3  # rounded to 4 places in JSON
