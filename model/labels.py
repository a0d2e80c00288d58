"""Class names in the order of the network's outputs, the rule that turns its probabilities into a label, and
the probabilities reported with that label."""

import numpy as np

CLASS_NAMES = ("with_mask", "without_mask")
WITHOUT_MASK = CLASS_NAMES.index("without_mask")


def decide(probabilities: np.ndarray, without_mask_threshold: float = 0.5) -> np.ndarray:
    """Class indices for (n, 2) probabilities: a bare face called masked lets the wrong person through, so the
    model card may set the probability of `without_mask` above which a face is called bare lower than 0.5."""
    return (probabilities[..., WITHOUT_MASK] >= without_mask_threshold).astype(np.int64) * WITHOUT_MASK


def fold_threshold(probabilities: np.ndarray, without_mask_threshold: float = 0.5) -> np.ndarray:
    """The network's (…, 2) probabilities with the decision threshold moved to 0.5, so that the label is always
    the class with the larger reported probability and a bare face is never shown as "No mask 43%".

    `without_mask` is stretched piecewise-linearly: [0, t] onto [0, 0.5] and [t, 1] onto [0.5, 1]; `with_mask`
    is the rest. The order of faces and the label are unchanged; 0 and 1 stay where they are.
    """
    t = without_mask_threshold
    bare = probabilities[..., WITHOUT_MASK]
    folded = np.where(bare < t, bare * (0.5 / t), 0.5 + (bare - t) * (0.5 / (1 - t)))
    return np.stack([1 - folded, folded], axis=-1).astype(probabilities.dtype)
