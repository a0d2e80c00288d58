"""Hostile uploads and requests against real gunicorn (2 workers × 4 threads: a platform that sets WEB_CONCURRENCY=2).

Each probe gets the answer listed in docs/deploy.md ("What the app alone guarantees"), never a 500, and the server
answers a real photo and /healthz right after it. The `load` test at the end measures the memory of the largest
uploads accepted. The upload limits in-process are tested in tests/test_upload_limits.py; the slow-client probes
need the buffering front and are in tests/test_front.py.
"""

import io
import os
import re
import struct
import threading
import time

import cv2
import numpy as np
import psutil
import pytest
import requests
from PIL import Image

from config import Settings
from harness.images import encode
from harness.paths import ROOT
from harness.servers import run_gunicorn, server_rss_mb
from model.image_io import decode_image
from tests.support import KINDS, assert_still_serving, largest, post, post_request, raw_http, workers

PHONE_PHOTOS = ROOT / "tests" / "phone_photos"


@pytest.fixture(scope="module")
def photo(one_face_photo) -> bytes:
    return one_face_photo[0].read_bytes()


def chunked(body: bytes, chunk: int = 1 << 20) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i : i + chunk]), body[i : i + chunk])
                    for i in range(0, len(body), chunk)) + b"0\r\n\r\n"


def length(body: bytes) -> str:
    return f"Content-Length: {len(body)}\r\n"


def png(array: np.ndarray) -> bytes:
    return cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def mpo(photo: bytes) -> bytes:
    image = Image.open(io.BytesIO(photo))
    buffer = io.BytesIO()
    image.save(buffer, "MPO", save_all=True, append_images=[image.convert("L").convert("RGB")], quality=90)
    return buffer.getvalue()


def malformed_exif(photo: bytes) -> bytes:
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + struct.pack(">HHI", 0x0112, 2, 4) + b"abc\x00" + b"\x00" * 4
    payload = b"Exif\x00\x00" + tiff
    return photo[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + photo[2:]


def truncated_big_jpeg() -> bytes:
    return cv2.imencode(".jpg", np.zeros((6000, 6000), np.uint8))[1].tobytes()[:631]


def multipart(parts: int, image: bytes) -> tuple[str, bytes]:
    fields = b"".join(b'--b\r\nContent-Disposition: form-data; name="f%d"\r\n\r\nx\r\n' % i for i in range(parts - 1))
    body = fields + b'--b\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n' \
        b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--b--\r\n"
    return "multipart/form-data; boundary=b", body


def png_bytes(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_uploads_that_must_be_refused_get_a_json_4xx_and_the_server_keeps_serving(server, photo):
    url, process, log_path = server.url, server.process, server.log_path
    workers = {p.pid for p in psutil.Process(process.pid).children()}
    eleven_mb = np.random.default_rng(0).integers(0, 256, 11 * 2**20, dtype=np.uint8).tobytes()
    chunked_header = "Transfer-Encoding: chunked\r\n"
    big_form_type, big_form = multipart(1, photo + eleven_mb)
    parts_type, parts_body = multipart(1001, photo)
    wide = png(np.zeros((2, 65_501), np.uint8))
    bomb = png(np.zeros((30_000, 30_000), np.uint8))
    truncated = truncated_big_jpeg()
    probes = [
        ("malformed chunk size", post_request("/api/detect", "image/jpeg", b"zz\r\nabc\r\n0\r\n\r\n", chunked_header),
         400, "malformed_body"),
        ("malformed chunk in multipart", post_request("/api/detect", "multipart/form-data; boundary=b",
                                                      b"zz\r\nabc\r\n0\r\n\r\n", chunked_header),
         400, "malformed_body"),
        ("chunked raw body over 10 MiB", post_request("/api/detect", "image/jpeg", chunked(photo + eleven_mb),
                                                      chunked_header), 413, "too_large"),
        ("chunked multipart over 10 MiB", post_request("/api/detect", big_form_type, chunked(big_form),
                                                       chunked_header), 413, "too_large"),
        ("1,001 multipart parts", post_request("/api/detect", parts_type, parts_body, length(parts_body)),
         413, "too_many_parts"),
        ("annotate a 65,501-px-wide image", post_request("/api/detect?annotate=1", "image/png", wide, length(wide)),
         422, "too_large_to_annotate"),
        ("631-byte JPEG that says 6000×6000", post_request("/api/detect", "image/jpeg", truncated, length(truncated)),
         415, "not_an_image"),
        ("30,000×30,000 PNG", post_request("/api/detect", "image/png", bomb, length(bomb)), 422, "too_many_pixels"),
    ]
    for name, request, status, code in probes:
        started = time.monotonic()
        got, headers, body = raw_http(url, request)
        assert (got, re.search(rb'"code": ?"(\w+)"', body).group(1).decode()) == (status, code), (name, body[:300])
        assert headers["Content-Type"] == "application/json" and b"message" in body, name
        assert time.monotonic() - started < 20, name
        assert_still_serving(url, photo)
    assert {p.pid for p in psutil.Process(process.pid).children()} == workers  # no worker died
    assert "Traceback" not in log_path.read_text(errors="replace")


def test_hostile_input_interleaved_with_good_requests(server, one_face_photo):
    url, process = server.url, server.process
    before = workers(process)
    good = one_face_photo[0].read_bytes()
    photo = decode_image(good)
    hostile = [
        ("zero bytes", b"", "image/jpeg", 400),
        ("text", b"GET / HTTP/1.1\r\nthis is text", "text/plain", 415),
        ("truncated JPEG", good[: len(good) // 2], "image/jpeg", 415),
        ("30,000 x 30,000 PNG", png_bytes(30_000, 30_000), "image/png", 422),
        ("50 MB upload", os.urandom(50 * 1024 * 1024), "image/jpeg", 413),
        ("GIF", encode(photo, "GIF"), "image/gif", 415),
        ("wrong content type", good, "application/json", 415),
    ]
    acceptable = [
        ("CMYK JPEG", encode(photo, "JPEG", "CMYK"), "image/jpeg"),
        ("16-bit PNG", cv2.imencode(".png", photo.astype(np.uint16) * 257)[1].tobytes(), "image/png"),
        ("grayscale", encode(photo, "PNG", "L"), "image/png"),
        ("alpha", encode(photo, "PNG", "RGBA"), "image/png"),
    ]
    for name, data, content_type, status in hostile:
        for multipart in (True, False):
            if name == "wrong content type" and multipart:
                continue  # in multipart the part's declared type is ignored: the bytes decide
            response = post(url, data, content_type, multipart)
            assert response.status_code == status, (name, multipart, response.text[:200])
            assert response.json()["error"]["message"], name
            assert post(url, good).status_code == 200, f"good request after {name}"
    for name, data, content_type in acceptable:
        response = post(url, data, content_type)
        assert response.status_code == 200 and len(response.json()["faces"]) == 1, name
    assert workers(process) == before  # no worker died


def test_phone_photos_are_analysed(server, photo):
    url = server.url
    heic = (PHONE_PHOTOS / "face.heic").read_bytes()
    for name, data, content_type in [("MPO", mpo(photo), "image/jpeg"),
                                     ("malformed EXIF orientation", malformed_exif(photo), "image/jpeg"),
                                     ("HEIC", heic, "image/heic"),
                                     ("48 MP tiled HEIC", (PHONE_PHOTOS / "face-48mp.heic").read_bytes(),
                                      "image/heic")]:
        response = requests.post(f"{url}/api/detect", files={"image": ("photo", data, content_type)}, timeout=60)
        assert response.status_code == 200 and len(response.json()["faces"]) == 1, (name, response.text[:200])


def test_untrusted_host_never_reaches_a_location_header(server):
    url = server.url
    status, headers, _ = raw_http(url, b"GET /static//js/api.js HTTP/1.1\r\nHost: evil.example\r\n"
                                       b"Connection: close\r\n\r\n")
    assert status == 308 and headers["Location"] == "/static/js/api.js"


def test_what_already_held_still_holds(server, photo):
    url = server.url
    bomb = png(np.zeros((30_000, 30_000), np.uint8))
    started = time.monotonic()
    response = requests.post(f"{url}/api/detect", data=bomb, headers={"Content-Type": "image/png"}, timeout=30)
    assert response.status_code == 422 and time.monotonic() - started < 5  # from the header, in milliseconds
    gif = cv2.imencode(".bmp", np.zeros((10, 10, 3), np.uint8))[1].tobytes()
    assert requests.post(f"{url}/api/detect", data=gif, headers={"Content-Type": "image/bmp"}, timeout=30
                         ).status_code == 415
    for path in ("/", "/webcam", "/api/model", "/healthz", "/static/js/webcam.js", "/api/nothing"):
        headers = requests.get(f"{url}{path}", timeout=30).headers
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Content-Type-Options"] == "nosniff", path


def test_memory_bombs_inside_the_pixel_limit_are_refused_or_decoded_within_the_budget(server, photo):
    """An RGBA PNG of 7000×5700, inside MAX_PIXELS but needing more than the default DECODE_MEMORY_MB to decode,
    is refused from its header; the largest RGBA PNG that budget allows decodes, in integers."""
    url = server.url
    bomb = np.zeros((5700, 7000, 4), np.uint8)
    bomb[..., 3] = 128
    data = png(bomb)
    started = time.monotonic()
    response = requests.post(f"{url}/api/detect", data=data, headers={"Content-Type": "image/png"}, timeout=60)
    assert response.status_code == 422 and "MB" in response.json()["error"]["message"]
    assert time.monotonic() - started < 5  # from the header: no pixel decoded
    width, height, data = largest("8-bit RGBA PNG", Settings())
    response = requests.post(f"{url}/api/detect", data=data, headers={"Content-Type": "image/png"}, timeout=120)
    assert response.status_code == 200 and (response.json()["width"], response.json()["height"]) == (width, height)
    assert_still_serving(url, photo)


@pytest.mark.load
def test_four_concurrent_largest_uploads_of_each_kind(photo, capsys):
    """Peak RSS of the whole server (one worker, the Procfile's defaults) while four of the largest accepted
    images of one kind arrive at once."""
    settings = Settings()
    lines = []
    with run_gunicorn({}) as (url, process):
        idle = server_rss_mb(process)
        # The detector's network sizes itself to the largest input it has seen (1280 px): warm it first.
        warm_up = largest("RGB JPEG", settings)[2]
        threads = [threading.Thread(target=requests.post, args=(f"{url}/api/detect",),
                                    kwargs={"data": warm_up, "headers": {"Content-Type": "image/jpeg"},
                                            "timeout": 120}) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        warm = server_rss_mb(process)
        peaks, answers = {}, {}
        for kind in KINDS:
            width, height, data = largest(kind, settings)
            assert len(data) <= 10 * 2**20, kind
            peak, statuses, stop = [idle], [], threading.Event()

            def sample(stop: threading.Event = stop, peak: list = peak) -> None:
                while not stop.wait(0.05):
                    peak.append(server_rss_mb(process))

            def upload(data: bytes = data, kind: str = kind, statuses: list = statuses) -> None:
                response = requests.post(f"{url}/api/detect", data=data, timeout=120,
                                         headers={"Content-Type": "image/" + kind.split()[-1].lower()})
                statuses.append(response.status_code)

            sampler = threading.Thread(target=sample)
            sampler.start()
            clients = [threading.Thread(target=upload) for _ in range(4)]
            started = time.monotonic()
            for c in clients:
                c.start()
            for c in clients:
                c.join(timeout=300)
            stop.set()
            sampler.join()
            lines.append(f"{kind:16s} {width}×{height:<5d} {len(data) / 1e6:5.2f} MB: statuses {sorted(statuses)}, "
                         f"{time.monotonic() - started:5.1f} s, peak RSS {max(peak):5.0f} MB")
            peaks[kind], answers[kind] = max(peak), sorted(statuses)
            assert_still_serving(url, photo)
    with capsys.disabled():
        print(f"\n[memory] 1 worker × 4 threads: idle {idle:.0f} MB, {warm:.0f} MB once every "
              "thread has detected on a large photo")
        print("\n".join(f"[memory]   {line}" for line in lines))
    assert all(statuses == [200] * 4 for statuses in answers.values()), answers
    # One worker fits a 512 MB instance while four of the largest uploads arrive at once (docs/deploy.md).
    assert max(peaks.values()) < 512, (warm, peaks)
