"""What the tests share that benchmarks do not: a classifier that records its batches, and the metrics file an
"earlier run" leaves behind."""

import numpy as np

STALE_METRICS = "counter_1.db"  # left in the metrics folder by an earlier run: not a valid file of this one


class RecordingClassifier:
    """Wraps the real classifier and keeps every batch the pipeline sends it."""

    runtime = "recording"

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return self.inner.predict(batch)
