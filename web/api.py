"""JSON API: /api/detect, /api/classify, /api/model and /healthz (shape documented in openapi.yaml)."""

import base64
import time
from pathlib import Path

import cv2
import numpy as np
from flask import Blueprint, current_app, g, jsonify, request, send_file

from model.annotate import annotate
from model.image_io import decode_image
from model.pipeline import MaskPipeline
from web.errors import ApiError
from web.results import face_json, prediction_json
from web.uploads import image_bytes

bp = Blueprint("api", __name__)

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"

_BLANK_FACE = np.zeros((1, 100, 100, 1), np.float32)


def _pipeline() -> MaskPipeline:
    return current_app.extensions["mask_pipeline"]


def _decode_upload() -> np.ndarray:
    return decode_image(image_bytes(request), current_app.config["MAX_PIXELS"])


ANNOTATE_VALUES = {"0": False, "false": False, "1": True, "true": True}


@bp.post("/api/detect")
def detect():
    annotate_value = request.args.get("annotate", "0")
    if annotate_value not in ANNOTATE_VALUES:
        raise ApiError(400, "invalid_parameter", "The 'annotate' parameter must be 0, 1, true or false.")
    start = time.perf_counter()
    image = _decode_upload()
    decoded = time.perf_counter()
    analysis = _pipeline().analyze(image)
    g.faces_found = len(analysis.faces)  # for the access log
    timings = {"decode": (decoded - start) * 1000, **analysis.timings_ms}
    body = {
        "width": image.shape[1],
        "height": image.shape[0],
        "faces": [face_json(f) for f in analysis.faces],
    }
    if ANNOTATE_VALUES[annotate_value]:
        ok, jpeg = cv2.imencode(".jpg", annotate(image, analysis.faces), [cv2.IMWRITE_JPEG_QUALITY, 90])
        body["annotated_image"] = base64.b64encode(jpeg.tobytes()).decode("ascii")
    timings["total"] = (time.perf_counter() - start) * 1000
    body["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
    return jsonify(body)


@bp.post("/api/classify")
def classify():
    prediction = _pipeline().classify_crops([_decode_upload()])[0]
    return jsonify(prediction_json(prediction))


@bp.get("/api/model")
def model_card():
    pipeline = _pipeline()
    card = dict(current_app.extensions["model_card"])
    card["serving"] = {"runtime": pipeline.classifier.runtime, "detector": pipeline.detector.name}
    return jsonify(card)


@bp.get("/openapi.yaml")
def openapi():
    return send_file(OPENAPI_PATH, mimetype="application/yaml")


@bp.get("/healthz")
def healthz():
    """Ready only when the network answers, so a platform never routes traffic to a worker that cannot."""
    try:
        probabilities = _pipeline().classifier.predict(_BLANK_FACE)
    except Exception as exc:
        raise ApiError(503, "model_unavailable", f"The model does not answer: {exc.__class__.__name__}") from exc
    if probabilities.shape != (1, 2):
        raise ApiError(503, "model_unavailable", "The model answers with the wrong shape.")
    return jsonify(status="ok")
