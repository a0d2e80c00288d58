"""Augmentation of the cached 100×100 faces: Keras layers that run inside the training step, on any backend.

They sit in front of the network only while it trains (`training.train` wraps the two), so the saved network
and its input stay exactly as specified.
"""

import math
from typing import Any

import keras
from keras import ops

DARKEST_GAIN = 0.03
UNDEREXPOSED_SHARE = 0.5  # of the training faces, unless a run asks for another
Tensor = Any  # a NumPy array or a tensor of the Keras backend


def darken(faces: Tensor, gain: Tensor | float) -> Tensor:
    """Faces at a fraction of their exposure, back on the 8-bit grid a camera gives."""
    return ops.round(faces * gain * 255.0) / 255.0


class Underexpose(keras.layers.Layer):
    """Darkens a share of the faces by a gain between DARKEST_GAIN and 1 (log-uniform), as in dim webcam frames,
    which the training photos lack: without it the network calls nearly every face in a frame at 15% exposure
    masked."""

    def __init__(self, share: float = UNDEREXPOSED_SHARE, seed: int | None = None, **kwargs) -> None:
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
    without it every training step there runs op by op: 170 ms a step on a GPU."""
    layer.supports_jit = keras.backend.backend() != "tensorflow"
    return layer


def augmentation(underexposed_share: float = UNDEREXPOSED_SHARE) -> list[keras.Layer]:
    """What users' photos do that the training crops rarely show: a tilted head, a detector box a little off
    centre, looser or tighter, other light, a dim room."""
    return [
        keras.layers.RandomFlip("horizontal"),
        compilable(keras.layers.RandomRotation(0.04)),  # ±15°
        compilable(keras.layers.RandomZoom(0.15)),
        compilable(keras.layers.RandomTranslation(0.08, 0.08)),
        keras.layers.RandomContrast(0.3, value_range=(0, 1)),
        keras.layers.RandomBrightness(0.2, value_range=(0, 1)),
        Underexpose(underexposed_share),
    ]
