"""Every route and error of the JSON API, and the pages' headers, through Flask's test client with the real model;
the answers to uploads over a limit are tested in tests/test_upload_limits.py."""

import base64
import io

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.images import encode
from harness.paths import scene_photos
from harness.servers import metric_value
from model.image_io import decode_image
from model.pipeline import load_pipeline
from tests.support import assert_error, post_image
from training.evaluate import match

PREDICTION_KEYS = {"label", "confidence", "probabilities"}


@pytest.fixture(scope="module")
def photo_bytes(one_face_photo) -> bytes:
    return one_face_photo[0].read_bytes()


def assert_prediction(body: dict) -> None:
    assert set(body) >= PREDICTION_KEYS
    assert body["label"] in ("with_mask", "without_mask")
    assert set(body["probabilities"]) == {"with_mask", "without_mask"}
    assert body["confidence"] == body["probabilities"][body["label"]] == max(body["probabilities"].values())
    assert body["confidence"] >= 0.5  # the decision threshold is folded in: the number never reads as the other label
    assert abs(sum(body["probabilities"].values()) - 1) < 1e-3


def test_detect_finds_the_face_with_the_documented_shape(client, one_face_photo, photo_bytes):
    _, truths = one_face_photo
    response = post_image(client, photo_bytes)
    assert response.status_code == 200
    body = response.get_json()
    image = decode_image(photo_bytes)
    assert (body["width"], body["height"], body["scale"]) == (image.shape[1], image.shape[0], 1)
    assert len(body["faces"]) == 1
    face = body["faces"][0]
    assert set(face) == PREDICTION_KEYS | {"box"}
    assert all(isinstance(face["box"][k], int) for k in "xywh")
    assert_prediction(face)
    box = tuple(face["box"][k] for k in "xywh")
    assert match(truths, [box]) == {0: 0}
    assert set(body["timings_ms"]) == {"decode", "detect", "classify", "total"}
    assert "annotated_image" not in body


def test_raw_image_body_gives_the_same_answer_as_multipart(client, photo_bytes):
    multipart = post_image(client, photo_bytes).get_json()
    raw = post_image(client, photo_bytes, multipart=False).get_json()
    assert raw["faces"] == multipart["faces"]


def test_annotate_returns_a_jpeg_of_the_image(client, photo_bytes):
    body = post_image(client, photo_bytes, route="/api/detect?annotate=1").get_json()
    annotated = cv2.imdecode(np.frombuffer(base64.b64decode(body["annotated_image"]), np.uint8), cv2.IMREAD_COLOR)
    assert annotated.shape == (body["height"], body["width"], 3)
    assert not np.array_equal(annotated, decode_image(photo_bytes))  # boxes were drawn


def test_several_faces_in_one_photo(client, group_photo):
    path, truths = group_photo
    content_type = "image/png" if path.suffix == ".png" else "image/jpeg"
    body = post_image(client, path.read_bytes(), content_type=content_type).get_json()
    boxes = [tuple(f["box"][k] for k in "xywh") for f in body["faces"]]
    matched = match(truths, boxes)
    assert len(matched) >= len(truths) - 1
    assert {body["faces"][j]["label"] for j in matched.values()} == {"with_mask", "without_mask"}


def test_a_webcam_frame_takes_the_single_scale_path(client, sample_scenes_dir):
    """`?mode=frame`, which the webcam page sends, gets the detector's base scale alone; an upload gets every
    scale. Shown on a committed photo where the two searches give different boxes, so that a mix-up shows."""
    detector = load_pipeline().detector
    for path, _ in scene_photos(sample_scenes_dir):
        image = decode_image(path.read_bytes())
        single = [d.box for d in detector.detect(image, video_frame=True)]
        every = [d.box for d in detector.detect(image)]
        if single != every:
            break
    else:
        pytest.fail("no committed photo where the photo search differs from the frame search")
    content_type = "image/png" if path.suffix == ".png" else "image/jpeg"

    def boxes(route: str) -> list[tuple[int, ...]]:
        body = post_image(client, path.read_bytes(), content_type, route=route).get_json()
        return [tuple(f["box"][k] for k in "xywh") for f in body["faces"]]

    assert boxes("/api/detect?mode=frame") == single
    assert boxes("/api/detect") == boxes("/api/detect?mode=photo") == every


def test_an_unknown_mode_is_a_400(client, photo_bytes):
    assert_error(post_image(client, photo_bytes, route="/api/detect?mode=video"), 400, "invalid_parameter")


def test_exif_rotated_phone_photo_gets_boxes_in_upright_pixels(client, one_face_photo, photo_bytes):
    upright = decode_image(photo_bytes)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    sideways = encode(cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE), "JPEG", exif=exif.tobytes(), quality=95)
    body = post_image(client, sideways).get_json()
    assert (body["width"], body["height"]) == (upright.shape[1], upright.shape[0])
    boxes = [tuple(f["box"][k] for k in "xywh") for f in body["faces"]]
    assert match(one_face_photo[1], boxes) == {0: 0}


@pytest.mark.parametrize("fmt, mode", [("PNG", "RGBA"), ("PNG", "L"), ("JPEG", "L"), ("JPEG", "CMYK"), ("WEBP", None)])
def test_other_colour_modes_and_formats_are_analysed(client, photo_bytes, fmt, mode):
    data = encode(decode_image(photo_bytes), fmt, mode)
    response = post_image(client, data, content_type=f"image/{fmt.lower()}")
    assert response.status_code == 200
    assert len(response.get_json()["faces"]) == 1


def test_sixteen_bit_png_is_analysed(client, photo_bytes):
    data = cv2.imencode(".png", decode_image(photo_bytes).astype(np.uint16) * 257)[1].tobytes()
    assert len(post_image(client, data, "image/png").get_json()["faces"]) == 1


def test_photo_without_faces(client):
    data = encode(np.full((300, 400, 3), 230, np.uint8), "PNG")
    body = post_image(client, data, "image/png").get_json()
    assert body["faces"] == [] and body["width"] == 400


def test_classify_a_cropped_face(client, one_face_photo, photo_bytes):
    x, y, w, h = one_face_photo[1][0].box
    face = encode(decode_image(photo_bytes)[y : y + h, x : x + w], "PNG")
    response = post_image(client, face, "image/png", route="/api/classify")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == PREDICTION_KEYS
    assert_prediction(body)


def test_healthz_and_model_card(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    card = client.get("/api/model").get_json()
    assert card["parameters"] == 2_827_252
    assert card["serving"] == {"runtime": "tflite", "model_file": "mask_cnn.int8.tflite",
                               "detector": "centerface+yunet-n"}
    assert 0.0 <= card["metrics"]["test"]["accuracy"] <= 1.0


def test_metrics_count_requests_faces_stages_and_rejected_uploads(client, photo_bytes):
    def snapshot() -> dict[str, float]:
        text = client.get("/metrics").get_data(as_text=True)
        return {
            "detected": metric_value(text, "mask_http_request_duration_seconds_count",
                                     method="POST", route="/api/detect", status="200"),
            "refused": metric_value(text, "mask_http_request_duration_seconds_count",
                                    method="POST", route="/api/detect", status="415"),
            "images": metric_value(text, "mask_faces_per_image_count"),
            "no face": metric_value(text, "mask_faces_per_image_bucket", le="0.0"),
            "one face": metric_value(text, "mask_faces_per_image_bucket", le="1.0"),
            **{stage: metric_value(text, "mask_stage_duration_seconds_count", stage=stage)
               for stage in ("decode", "detect", "classify")},
            "not_an_image": metric_value(text, "mask_rejected_uploads_total", route="/api/detect", code="not_an_image"),
            "metrics": metric_value(text, "mask_http_request_duration_seconds_count",
                                    method="GET", route="/metrics", status="200"),
        }

    before = snapshot()
    assert post_image(client, photo_bytes).status_code == 200  # one face
    assert_error(post_image(client, b"just some text"), 415, "not_an_image")
    after = snapshot()
    grown = {name: after[name] - before[name] for name in before}
    assert grown == {"detected": 1, "refused": 1, "images": 1, "no face": 0, "one face": 1, "decode": 1,
                     "detect": 1, "classify": 1, "not_an_image": 1, "metrics": 1}
    assert client.get("/metrics").headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize("route", ["/api/detect", "/api/classify"])
def test_missing_and_empty_images_are_400(client, route):
    assert_error(client.post(route), 400, "missing_image")
    assert_error(client.post(route, data={"other": "x"}, content_type="multipart/form-data"), 400, "missing_image")
    assert_error(post_image(client, b"", route=route), 400, "empty_image")
    assert_error(post_image(client, b"", route=route, multipart=False), 400, "empty_image")


@pytest.mark.parametrize("route", ["/api/detect", "/api/classify"])
def test_undecodable_images_are_415(client, photo_bytes, route):
    assert_error(post_image(client, b"just some text", route=route), 415, "not_an_image")
    assert_error(post_image(client, photo_bytes[: len(photo_bytes) // 2], route=route), 415, "not_an_image")
    gif = encode(decode_image(photo_bytes), "GIF")
    assert_error(post_image(client, gif, "image/gif", route=route), 415, "unsupported_format")
    assert_error(post_image(client, photo_bytes, "text/plain", route=route, multipart=False), 415,
                 "unsupported_media_type")


def test_several_image_parts_are_refused_with_the_rule(client, photo_bytes):
    two = {"image": [(io.BytesIO(photo_bytes), "a.jpg", "image/jpeg"),
                     (io.BytesIO(photo_bytes), "b.jpg", "image/jpeg")]}
    response = client.post("/api/detect", data=two, content_type="multipart/form-data")
    assert_error(response, 400, "multiple_images")
    assert "one image per request" in response.get_json()["error"]["message"]


def test_unknown_api_route_and_wrong_method_are_json(client):
    assert_error(client.get("/api/nothing"), 404, "not_found")
    assert_error(client.get("/api/detect"), 405, "method_not_allowed")


def test_pages_render_with_security_headers(client):
    for path, marker in (("/", b'id="file-input"'), ("/webcam", b'id="overlay"')):
        response = client.get(path)
        assert response.status_code == 200 and marker in response.data
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert b"<script>" not in response.data and b" style=" not in response.data  # nothing inline
    assert client.get("/static/js/webcam.js").status_code == 200


def test_large_uploads_stay_in_memory(app, photo_bytes):
    big = photo_bytes + b"\0" * 2_000_000  # well over Werkzeug's 500 kB spooling threshold
    with app.test_request_context("/api/detect", method="POST", content_type="multipart/form-data",
                                  data={"image": (io.BytesIO(big), "big.jpg", "image/jpeg")}):
        from flask import request

        assert isinstance(request.files["image"].stream, io.BytesIO)
