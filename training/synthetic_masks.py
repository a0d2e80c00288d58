"""Counterfactual masks painted onto bare training faces.

The two classes of the training set come from different places: most bare faces are well-lit portraits of a few
hundred people, most masked faces are not. A network can then tell the classes apart by who is pictured, or how,
rather than by the mask, and it calls bare faces unlike the portraits (a beard, glasses, a webcam) masked. Painting
a mask onto a bare face gives a pair of images that differ only where a mask would be.
"""

import math

import tensorflow as tf

from model.preprocess import INPUT_SIZE


def _uniform(low: float, high: float) -> tf.Tensor:
    return tf.random.uniform([], low, high)


def paint_mask(face: tf.Tensor) -> tf.Tensor:
    """A face mask of random shape, tone, shading and pleats over the nose, mouth and chin of one (100, 100, 1)
    detector crop, where those lie in the training crops (eyes at ~40% of the height, mouth at ~75%)."""
    coords = (tf.range(INPUT_SIZE, dtype=tf.float32) + 0.5) / INPUT_SIZE
    y, x = tf.meshgrid(coords, coords, indexing="ij")
    centre = _uniform(0.45, 0.55)
    half_width = _uniform(0.32, 0.42)
    top = _uniform(0.48, 0.58)  # at the cheeks; higher over the nose bridge
    bottom = _uniform(0.92, 1.05)
    across = (x - centre) / half_width
    top_edge = top - _uniform(0.02, 0.1) * (1.0 - tf.minimum(across**2, 1.0))
    jaw = across**2 + ((y - top) / (bottom - top)) ** 2  # < 1 inside an ellipse whose lower half is the jaw line
    softness = _uniform(0.005, 0.02)
    alpha = tf.sigmoid((y - top_edge) / softness) * tf.sigmoid((1.0 - jaw) / (4 * softness))

    # Tone anywhere from black cloth to white paper, seen under the face's own exposure.
    exposure = tf.clip_by_value(tf.reduce_mean(face) / 0.5, 0.3, 1.2)
    tone = _uniform(0.1, 0.95) * exposure
    side_light = 1.0 + _uniform(-0.4, 0.4) * (x - centre)
    chin_shadow = 1.0 - _uniform(0.0, 0.3) * tf.nn.relu(y - 0.8) / 0.2
    pleats = 1.0 - _uniform(0.0, 0.15) * tf.cast(_uniform(0, 1) < 0.5, tf.float32) * (
        0.5 + 0.5 * tf.sin(2 * math.pi * _uniform(8.0, 14.0) * y)
    )
    noise = tf.random.normal(tf.shape(y), stddev=_uniform(0.0, 0.03))
    mask = tf.clip_by_value(tone * side_light * chin_shadow * pleats + noise, 0.0, 1.0)
    return face * (1.0 - alpha[..., None]) + mask[..., None] * alpha[..., None]
