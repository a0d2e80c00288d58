"""A test double that wraps the real classifier."""

import numpy as np


class RecordingClassifier:
    """Wraps the real classifier and keeps every batch the pipeline sends it."""

    runtime = "recording"

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return self.inner.predict(batch)
