"""Running the mask CNN on a batch of preprocessed faces with LiteRT, which needs no TensorFlow; training and
evaluation run the Keras file the exports come from (`training.keras_classifier`).

Training writes two exports of the same network: float32 (`mask_cnn.tflite`, Keras's probabilities within 1e-4)
and full-integer int8 (`mask_cnn.int8.tflite`, weights and activations in 8 bits), which the server runs by
default: less CPU per face with the float export's labels on all but a few faces (tests/test_export.py; figures
in docs/training.md and docs/benchmarks.md). Without TensorFlow a worker stays small, and LiteRT's single thread
leaves the cores to the detector.
"""

import json
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from model.preprocess import INPUT_SHAPE

MODEL_DIR = Path(__file__).parent
KERAS_PATH = MODEL_DIR / "mask_cnn.keras"
TFLITE_PATH = MODEL_DIR / "mask_cnn.tflite"  # float32
INT8_SUFFIX = ".int8"  # an int8 export is named after its float export: mask_cnn.int8.tflite
INT8_PATH = MODEL_DIR / f"mask_cnn{INT8_SUFFIX}.tflite"
SERVED_PATH = INT8_PATH  # what the server runs unless MODEL_PATH says otherwise
CARD_PATH = MODEL_DIR / "mask_cnn.json"  # one card for the Keras file and both exports


class ModelLoadError(RuntimeError):
    """The model file is missing or unreadable; the message names the file."""


class Classifier(Protocol):
    runtime: str

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """(n, 100, 100, 1) float32 → (n, 2) class probabilities."""
        ...


class LiteClassifier:
    runtime = "tflite"

    def __init__(self, path: Path = SERVED_PATH) -> None:
        from ai_edge_litert.interpreter import Interpreter

        try:
            self._interpreter = Interpreter(model_path=str(path), num_threads=1)
            self._input = self._interpreter.get_input_details()[0]["index"]
            self._interpreter.resize_tensor_input(self._input, (1, *INPUT_SHAPE))
            self._interpreter.allocate_tensors()
        except Exception as exc:
            raise ModelLoadError(f"cannot load model file {path}: {exc.__class__.__name__}") from exc
        output = self._interpreter.get_output_details()[0]
        self._output, self._classes = output["index"], int(output["shape"][-1])
        self._lock = threading.Lock()  # an interpreter holds state between set_tensor and get_tensor

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """One face per invocation, on an interpreter sized for one face once and for all, so that a worker's
        memory does not follow each photo's face count (docs/detector.md)."""
        probabilities = []
        for face in np.asarray(batch, dtype=np.float32):
            with self._lock:
                self._interpreter.set_tensor(self._input, face[np.newaxis])
                self._interpreter.invoke()
                probabilities.append(self._interpreter.get_tensor(self._output)[0].copy())
        probabilities = np.array(probabilities, dtype=np.float32).reshape(len(batch), self._classes)
        # The int8 export's softmax comes out in steps of 1/256 ([0, 0.9961], say): scaled back to a sum of 1, as
        # the API promises. The float export's already sums to 1.
        return probabilities / probabilities.sum(axis=1, keepdims=True)


def check_model_file(path: Path = SERVED_PATH) -> None:
    """Cheap integrity check (LiteRT's flatbuffer verifier), so a server can refuse to start before it forks."""
    if not path.is_file():
        raise ModelLoadError(f"model file not found: {path}")
    try:
        LiteClassifier(path)
    except (ValueError, OSError, ModelLoadError) as exc:
        raise ModelLoadError(f"model file is corrupt: {path} ({exc.__class__.__name__})") from exc


def card_path_for(model_path: Path) -> Path:
    """The model card beside a model file: the same name with .json, an int8 export sharing its float export's
    card (mask_cnn.keras, mask_cnn.tflite and mask_cnn.int8.tflite → mask_cnn.json)."""
    return model_path.with_name(model_path.stem.removesuffix(INT8_SUFFIX) + ".json")


def load_card(model_path: Path = SERVED_PATH) -> dict:
    """The JSON model card of a model file (`card_path_for`)."""
    path = card_path_for(model_path)
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read model card {path}: {exc.__class__.__name__}") from exc
