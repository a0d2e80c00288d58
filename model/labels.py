"""Class names in the order of the network's outputs (and of the training data's sub-folders)."""

CLASS_NAMES = ("with_mask", "without_mask")
