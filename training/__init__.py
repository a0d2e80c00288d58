"""Reproducing the model: loading the face-mask dataset, training, evaluating."""
