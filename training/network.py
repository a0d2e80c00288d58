"""The CNN exactly as specified; only training builds it, serving loads the saved file."""

import keras
from keras import layers

from model.labels import CLASS_NAMES
from model.preprocess import INPUT_SHAPE


def build_model() -> keras.Model:
    """Compiled as specified; training recompiles the same loss and optimizer with a learning-rate schedule.
    Under a mixed-precision policy the softmax still computes in float32, as Keras advises for outputs."""
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(200, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(100, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(50, activation="relu"),
            layers.Dense(len(CLASS_NAMES), activation="softmax", dtype="float32"),
        ],
        name="mask_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    return model
