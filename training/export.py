"""Exporting the trained Keras network to a LiteRT (.tflite) file for the lean serving mode."""

from pathlib import Path

import keras


def export_tflite(model: keras.Model, path: Path) -> None:
    """Float32, no quantisation: the lean mode must give the same probabilities as Keras."""
    model.export(str(path), format="litert")
