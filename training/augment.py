"""Augmentation of the cached 100×100 faces: Keras layers that run inside the training step, on any backend.

They sit in front of the network only while it trains (`training.train` wraps the two), so the saved network
and its input stay exactly as specified. They compute in float32 whatever the training precision: bfloat16's
8 bits of mantissa would put resampled faces off the grey levels a camera gives.
"""

import math
from typing import Any

import keras
from keras import ops

from training.recipe import Augmentation

DARKEST_GAIN = 0.03
Tensor = Any  # a NumPy array or a tensor of the Keras backend


def darken(faces: Tensor, gain: Tensor | float) -> Tensor:
    """Faces at a fraction of their exposure, back on the 8-bit grid a camera gives."""
    return ops.round(faces * gain * 255.0) / 255.0


class Underexpose(keras.layers.Layer):
    """Darkens a share of the faces by a gain between DARKEST_GAIN and 1 (log-uniform), as in dim webcam frames,
    which the training photos lack: without it the network calls nearly every face in a dim frame masked."""

    def __init__(self, share: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.share = share
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, faces: Tensor, training: bool = True) -> Tensor:
        if not training:
            return faces
        shape = (ops.shape(faces)[0], 1, 1, 1)
        gain = ops.exp(keras.random.uniform(shape, math.log(DARKEST_GAIN), 0.0, seed=self.seed_generator))
        chosen = keras.random.uniform(shape, seed=self.seed_generator) < self.share
        return ops.where(chosen, darken(faces, gain), faces)


def compilable(layer: keras.Layer) -> keras.Layer:
    """Keras marks its resampling layers unfit for XLA because TensorFlow's kernel is. JAX's compiles, and
    without it every training step there runs op by op."""
    layer.supports_jit = keras.backend.backend() != "tensorflow"
    return layer


def augmentation(recipe: Augmentation) -> list[keras.Layer]:
    """What users' photos do that the training crops rarely show: a tilted head, a detector box a little off
    centre, looser or tighter, other light, a dim room."""
    f32 = {"dtype": "float32"}
    layers = [keras.layers.RandomFlip("horizontal", **f32)] if recipe.flip else []
    return layers + [
        compilable(keras.layers.RandomRotation(recipe.rotation, **f32)),
        compilable(keras.layers.RandomZoom(recipe.zoom, **f32)),
        compilable(keras.layers.RandomTranslation(recipe.translation, recipe.translation, **f32)),
        keras.layers.RandomContrast(recipe.contrast, value_range=(0, 1), **f32),
        keras.layers.RandomBrightness(recipe.brightness, value_range=(0, 1), **f32),
        Underexpose(recipe.underexposed_share, **f32),
    ]
