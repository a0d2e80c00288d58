"""Prometheus metrics at GET /metrics: requests by route and status with their latency, requests in progress,
faces per image, the time of each stage of a detection, and rejected uploads by error code.

Under gunicorn each worker is its own process. gunicorn.conf.py gives them one folder (PROMETHEUS_MULTIPROC_DIR,
set before any worker starts) where each writes its values, and /metrics sums every worker's, whichever worker
answers. Without it (`flask run`, the Flask test client) the process's own registry answers. /metrics holds no
image data; behind the front nginx keeps it private (docs/deploy.md).
"""

import time
from pathlib import Path

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUEST_SECONDS = Histogram(
    "mask_http_request_duration_seconds",
    "Time from a request's arrival in the app to its response, by method, route and status; _count counts requests.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
IN_PROGRESS = Gauge("mask_http_requests_in_progress", "Requests the app is working on now, all workers together.",
                    multiprocess_mode="livesum")
FACES = Histogram("mask_faces_per_image", "Faces found in each image of POST /api/detect.",
                  buckets=(0, 1, 2, 3, 5, 10, 20, 50, 100))
STAGE_SECONDS = Histogram(
    "mask_stage_duration_seconds", "Time of each stage of POST /api/detect: decode, detect, classify.", ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
REJECTED = Counter("mask_rejected_uploads_total", "Uploads answered with an error, by route and error code.",
                   ["route", "code"])
STAGES = ("decode", "detect", "classify")

bp = Blueprint("metrics", __name__)


def observe_detection(faces: int, timings_ms: dict[str, float]) -> None:
    """One image of POST /api/detect: its face count and the time of each stage."""
    FACES.observe(faces)
    for stage in STAGES:
        STAGE_SECONDS.labels(stage).observe(timings_ms[stage] / 1000)


def register_metrics(app: Flask, multiprocess_dir: Path | None) -> None:
    """Count every request of `app`; `multiprocess_dir` is gunicorn's shared folder, None in a single process."""
    app.extensions["metrics_dir"] = multiprocess_dir
    app.register_blueprint(bp)

    @app.before_request
    def start() -> None:
        g.metrics_start = time.perf_counter()
        IN_PROGRESS.inc()

    @app.after_request
    def count(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"  # never the raw path: bounded labels
        seconds = time.perf_counter() - g.get("metrics_start", time.perf_counter())
        REQUEST_SECONDS.labels(request.method, route, str(response.status_code)).observe(seconds)
        if request.method == "POST" and response.status_code >= 400 and "error_code" in g:
            REJECTED.labels(route, g.error_code).inc()
        return response

    @app.teardown_request
    def finish(_exc: BaseException | None) -> None:
        if g.pop("metrics_start", None) is not None:
            IN_PROGRESS.dec()


@bp.get("/metrics")
def metrics() -> Response:
    directory = current_app.extensions["metrics_dir"]
    registry = REGISTRY
    if directory is not None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(directory))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
