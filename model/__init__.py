"""Inference side of the mask detector: image → faces → preprocessed batch → network → results."""
