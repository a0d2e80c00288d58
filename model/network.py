"""The CNN exactly as specified; only training builds it, serving loads the saved file."""

import keras
from keras import layers

from model.labels import CLASS_NAMES
from model.preprocess import INPUT_SHAPE


def build_model(learning_rate: float | keras.optimizers.schedules.LearningRateSchedule = 1e-3) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=INPUT_SHAPE),
            layers.Conv2D(200, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(100, (3, 3), activation="relu"),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(50, activation="relu"),
            layers.Dense(len(CLASS_NAMES), activation="softmax"),
        ],
        name="mask_cnn",
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="categorical_crossentropy", metrics=["accuracy"])
    return model
