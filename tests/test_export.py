"""The LiteRT exports: the float one gives the trained Keras model's probabilities, the int8 one the server runs
gives the float one's labels, and neither needs TensorFlow."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.paths import ROOT, scene_photos
from model.classifier import (
    CARD_PATH,
    INT8_PATH,
    KERAS_PATH,
    TFLITE_PATH,
    LiteClassifier,
    card_path_for,
    check_model_file,
    load_card,
)
from model.detector import load_detector
from model.image_io import decode_image
from model.labels import decide
from model.pipeline import without_mask_threshold
from model.preprocess import crop, preprocess_face
from training.keras_classifier import KerasClassifier
from training.recipe import load_recipe


@pytest.fixture(scope="module")
def batch(sample_scenes_dir, sample_faces_dir) -> np.ndarray:
    """Every labelled face of the sample scenes and every sample face crop, preprocessed."""
    faces = [
        preprocess_face(crop(image, truth.box))
        for path, truths in scene_photos(sample_scenes_dir)
        for image in [decode_image(path.read_bytes())]
        for truth in truths
    ] + [preprocess_face(decode_image(path.read_bytes())) for path in sorted(sample_faces_dir.glob("*/*"))]
    return np.stack(faces)


def test_keras_and_litert_agree_within_1e_4_on_real_faces(batch):
    keras_probs = KerasClassifier.load(KERAS_PATH).predict(batch)
    lite = LiteClassifier(TFLITE_PATH)
    lite_probs = lite.predict(batch)
    assert len(batch) >= 40
    assert np.abs(keras_probs - lite_probs).max() <= 1e-4
    one_by_one = np.concatenate([lite.predict(face[np.newaxis]) for face in batch[:5]])
    assert np.abs(one_by_one - lite_probs[:5]).max() <= 1e-5  # resizing the interpreter changes nothing


def float_tensors(path: Path) -> set[str]:
    from ai_edge_litert.interpreter import Interpreter

    return {t["name"] for t in Interpreter(model_path=str(path)).get_tensor_details() if t["dtype"] == np.float32}


def test_the_int8_export_is_full_integer_between_a_float_input_and_output():
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(INT8_PATH))
    ends = {interpreter.get_input_details()[0]["name"], interpreter.get_output_details()[0]["name"]}
    assert float_tensors(INT8_PATH) == ends  # every weight and activation in between is an integer
    assert float_tensors(TFLITE_PATH) > ends


def test_int8_and_float_exports_give_the_same_labels_on_real_faces(batch):
    """The committed int8 file belongs to the committed model: at the card's threshold it reads these faces as
    the float export does, with probabilities within a few hundredths."""
    threshold = without_mask_threshold(INT8_PATH)
    exact, int8 = LiteClassifier(TFLITE_PATH).predict(batch), LiteClassifier(INT8_PATH).predict(batch)
    assert np.abs(exact - int8).max() <= 0.1
    assert np.abs(int8.sum(axis=1) - 1).max() <= 1e-6  # the quantised softmax is scaled back to a sum of 1
    assert (decide(exact, threshold) != decide(int8, threshold)).sum() <= 0.02 * len(batch)


def test_export_int8_writes_a_file_the_server_runs(batch, tmp_path):
    """The committed Keras model through training's int8 export, calibrated on these faces (a test's sample, not
    the training split that the committed file is calibrated on)."""
    import keras

    from training.export import calibration_faces, export_int8

    path = tmp_path / "mask_cnn.int8.tflite"
    export_int8(keras.models.load_model(KERAS_PATH, compile=False), path, calibration_faces(batch, count=40))
    check_model_file(path)
    assert len(float_tensors(path)) == 2
    exact, int8 = LiteClassifier(TFLITE_PATH).predict(batch), LiteClassifier(path).predict(batch)
    assert np.abs(exact - int8).max() <= 0.1


def test_one_card_describes_the_keras_model_and_both_exports():
    assert {card_path_for(p) for p in (KERAS_PATH, TFLITE_PATH, INT8_PATH)} == {CARD_PATH}
    assert card_path_for(Path("/models/v1.2.tflite")) == Path("/models/v1.2.json")
    assert load_card(INT8_PATH) == load_card(TFLITE_PATH) and INT8_PATH.name in load_card(INT8_PATH)["exports"]


def test_the_committed_model_was_trained_from_scratch_by_the_one_command():
    """No chain of fine-tuning from saved weights: `python -m training.train` makes what ships, on the serving
    detector's crops."""
    card = load_card(INT8_PATH)
    assert card["training"]["init_weights"] is None
    assert card["training"]["recipe"] == load_recipe().as_dict()
    assert card["training_data"]["detector"] == load_detector().fingerprint


SERVER_SCRIPT = """
import json, sys
import psutil
from app import app
response = app.test_client().post("/api/detect", data=open(sys.argv[1], "rb").read(), content_type="image/jpeg")
runtime = app.test_client().get("/api/model").get_json()["serving"]["runtime"]
tensorflow_loaded = any(m == "tensorflow" or m.startswith(("tensorflow.", "keras")) for m in sys.modules)
print(json.dumps({"faces": response.get_json()["faces"], "runtime": runtime, "tensorflow_loaded": tensorflow_loaded,
                  "child_processes": len(psutil.Process().children(recursive=True))}))
"""


def test_the_app_answers_without_importing_tensorflow_or_starting_a_process(one_face_photo):
    path, truths = one_face_photo
    result = subprocess.run([sys.executable, "-c", SERVER_SCRIPT, str(path)], cwd=ROOT, env=dict(os.environ),
                            capture_output=True, text=True, timeout=120, check=True)
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served["runtime"] == "tflite" and not served["tensorflow_loaded"] and served["child_processes"] == 0
    assert [f["label"] for f in served["faces"]] == [t.label for t in truths]
