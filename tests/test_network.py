"""The network is exactly the one specified, and the committed model file is that network."""

import keras

from model.classifier import KERAS_PATH
from training.network import build_model

EXPECTED_LAYERS = [
    ("Conv2D", (None, 98, 98, 200)),
    ("MaxPooling2D", (None, 49, 49, 200)),
    ("Conv2D", (None, 47, 47, 100)),
    ("MaxPooling2D", (None, 23, 23, 100)),
    ("Flatten", (None, 52900)),
    ("Dense", (None, 50)),
    ("Dense", (None, 2)),
]


def layer_summary(model: keras.Model) -> list[tuple[str, tuple]]:
    return [(layer.__class__.__name__, tuple(layer.output.shape)) for layer in model.layers]


def test_architecture_matches_the_specification():
    model = build_model()
    assert layer_summary(model) == EXPECTED_LAYERS
    assert model.count_params() == 2_827_252
    activations = [getattr(layer, "activation", None) for layer in model.layers]
    assert [a.__name__ for a in activations if a] == ["relu", "relu", "relu", "softmax"]
    assert [layer.kernel_size for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == [(3, 3), (3, 3)]
    assert isinstance(model.optimizer, keras.optimizers.Adam)
    assert model.loss == "categorical_crossentropy"


def test_committed_model_is_the_specified_network():
    model = keras.models.load_model(KERAS_PATH, compile=False)
    assert layer_summary(model) == EXPECTED_LAYERS
    assert model.count_params() == 2_827_252


def test_committed_model_file_carries_no_optimizer_state():
    """Weights only (2.8 M float32 ≈ 11 MB); Adam's moment estimates would triple it."""
    assert KERAS_PATH.stat().st_size < 15_000_000
