"""What the tests share that benchmarks do not: a classifier that records its batches, the metrics file an
"earlier run" leaves behind, and posting an image through Flask's test client."""

import io

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


def post_image(client, data: bytes, content_type: str = "image/jpeg", route: str = "/api/detect", multipart=True):
    if multipart:
        return client.post(route, data={"image": (io.BytesIO(data), "photo", content_type)},
                           content_type="multipart/form-data")
    return client.post(route, data=data, content_type=content_type)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"]["code"] == code and body["error"]["message"]
