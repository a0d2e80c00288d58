"""Class names in the order of the network's outputs, and the rule that turns its probabilities into a label."""

import numpy as np

CLASS_NAMES = ("with_mask", "without_mask")
WITHOUT_MASK = CLASS_NAMES.index("without_mask")


def decide(probabilities: np.ndarray, without_mask_threshold: float = 0.5) -> np.ndarray:
    """Class indices for (n, 2) probabilities: a bare face called masked lets the wrong person through, so the
    model card may set the probability of `without_mask` above which a face is called bare lower than 0.5."""
    return (probabilities[..., WITHOUT_MASK] >= without_mask_threshold).astype(np.int64) * WITHOUT_MASK
