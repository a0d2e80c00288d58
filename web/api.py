"""JSON API: /api/detect, /api/classify, /api/model and /healthz (shape documented in openapi.yaml)."""

import base64
import functools
import time
from pathlib import Path

import cv2
import numpy as np
from flask import Blueprint, current_app, g, jsonify, request, send_file

from model.annotate import annotate
from model.image_io import ImageHeader, decode_image
from model.pipeline import MaskPipeline
from web.errors import ApiError
from web.metrics import observe_detection
from web.results import face_json, prediction_json
from web.upload_limits import inspect_upload
from web.uploads import image_bytes

bp = Blueprint("api", __name__)

OPENAPI_PATH = Path(__file__).resolve().parents[1] / "openapi.yaml"

# One masked face; source: static/healthz_face.LICENSE
HEALTHZ_PHOTO = Path(__file__).parents[1] / "static" / "healthz_face.jpg"


def _pipeline() -> MaskPipeline:
    return current_app.extensions["mask_pipeline"]


def _decode_upload() -> tuple[np.ndarray, ImageHeader]:
    """The upload decoded once its decode memory is reserved (the reservation lasts until the request ends), and
    its header: a JPEG or tiled HEIC over MAX_PIXELS or the decode memory is decoded at 1/`header.reduction` of
    each side."""
    data = image_bytes(request)
    budget = current_app.extensions["decode_budget"]
    header = inspect_upload(data, current_app.config["MAX_PIXELS"], budget.capacity)
    g.decode_reservation = budget.reserve(header)
    return decode_image(data, header=header), header


@bp.teardown_request
def _release_decode_memory(_exc: BaseException | None) -> None:
    cost = g.pop("decode_reservation", 0)
    if cost:
        current_app.extensions["decode_budget"].release(cost)


ANNOTATE_VALUES = {"0": False, "false": False, "1": True, "true": True}
MODES = ("photo", "frame")  # frame: a video frame, searched at one scale so that a camera keeps its rate
JPEG_MAX_SIDE = 65_500  # the longest side OpenCV's JPEG encoder writes


@bp.post("/api/detect")
def detect():
    annotate_value = request.args.get("annotate", "0")
    if annotate_value not in ANNOTATE_VALUES:
        raise ApiError(400, "invalid_parameter", "The 'annotate' parameter must be 0, 1, true or false.")
    mode = request.args.get("mode", "photo")
    if mode not in MODES:
        raise ApiError(400, "invalid_parameter", "The 'mode' parameter must be photo or frame.")
    start = time.perf_counter()
    image, header = _decode_upload()
    decoded = time.perf_counter()
    if ANNOTATE_VALUES[annotate_value] and max(image.shape[:2]) > JPEG_MAX_SIDE:
        raise ApiError(422, "too_large_to_annotate", f"The image is {image.shape[1]}×{image.shape[0]} pixels; an "
                       f"annotated JPEG holds at most {JPEG_MAX_SIDE:,} pixels a side. Leave out annotate=1.")
    analysis = _pipeline().analyze(image, video_frame=mode == "frame")
    g.faces_found = len(analysis.faces)  # for the access log
    timings = {"decode": (decoded - start) * 1000, **analysis.timings_ms}
    observe_detection(len(analysis.faces), timings)
    body = {
        "width": image.shape[1],
        "height": image.shape[0],
        "scale": 1 / header.reduction,
        "faces": [face_json(f) for f in analysis.faces],
    }
    if ANNOTATE_VALUES[annotate_value]:
        _, jpeg = cv2.imencode(".jpg", annotate(image, analysis.faces), [cv2.IMWRITE_JPEG_QUALITY, 90])
        body["annotated_image"] = base64.b64encode(jpeg.tobytes()).decode("ascii")
    timings["total"] = (time.perf_counter() - start) * 1000
    body["timings_ms"] = {k: round(v, 1) for k, v in timings.items()}
    return jsonify(body)


@bp.post("/api/classify")
def classify():
    prediction = _pipeline().classify_crops([_decode_upload()[0]])[0]
    return jsonify(prediction_json(prediction))


@bp.get("/api/model")
def model_card():
    pipeline = _pipeline()
    card = dict(current_app.extensions["model_card"])
    card["serving"] = {"runtime": pipeline.classifier.runtime, "model_file": current_app.extensions["model_file"],
                       "detector": pipeline.detector.name}
    return jsonify(card)


@bp.get("/openapi.yaml")
def openapi():
    return send_file(OPENAPI_PATH, mimetype="application/yaml")


@bp.get("/healthz")
def healthz():
    """Ready only when the whole pipeline works on a real photo, so traffic never goes to a worker that cannot.

    The bundled face (decoded once) is detected and classified like an upload: about one request's work.
    """
    try:
        faces = _pipeline().analyze(_healthz_image()).faces
    except Exception as exc:
        raise ApiError(503, "pipeline_unavailable",
                       f"The pipeline fails on the bundled photo: {exc.__class__.__name__}") from exc
    if len(faces) != 1:
        raise ApiError(503, "pipeline_unavailable",
                       f"The detector finds {len(faces)} faces in the bundled photo of one.")
    return jsonify(status="ok")


@functools.cache
def _healthz_image() -> np.ndarray:
    return decode_image(HEALTHZ_PHOTO.read_bytes())
