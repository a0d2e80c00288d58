"""The Keras model as a `model.classifier.Classifier`, for training and evaluation, where TensorFlow is loaded
anyway; serving runs the LiteRT exports and never imports this."""

import os
from pathlib import Path

import numpy as np

from model.classifier import KERAS_PATH, ModelLoadError
from model.labels import CLASS_NAMES
from model.preprocess import INPUT_SHAPE

CHUNK = 256  # faces per forward pass


class KerasClassifier:
    """For training and evaluation, where TensorFlow is loaded anyway."""

    runtime = "keras"

    def __init__(self, model) -> None:  # a keras.Model
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the logs
        import tensorflow as tf

        # One compiled graph for any batch size: model.predict pays a large overhead on every call (docs/benchmarks.md).
        self._forward = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
        )

    @classmethod
    def load(cls, path: Path = KERAS_PATH) -> "KerasClassifier":
        import keras

        try:
            return cls(keras.models.load_model(path, compile=False))
        except Exception as exc:  # Keras raises several types for missing, truncated or foreign files
            raise ModelLoadError(f"cannot load model file {path}: {exc.__class__.__name__}") from exc

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """In chunks: the first convolution's output is 7.7 MB a face, too much for thousands at once."""
        chunks = [self._forward(batch[i : i + CHUNK]).numpy() for i in range(0, len(batch), CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(CLASS_NAMES)), np.float32)
