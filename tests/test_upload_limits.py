"""The limits on an upload: its size, and what can be decided from its header and container before any pixel is
decoded: too many pixels (refused, or a JPEG decoded reduced), the memory its decode takes, a truncated or forged
container. The same limits through real gunicorn, with malformed requests around them: tests/test_hostile.py."""

import io
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image

from app import create_app
from config import MB, Settings
from harness.images import encode, fit_on_canvas
from harness.paths import ROOT
from model.image_io import ImageError, ImageHeader, decode_image, read_header
from model.pipeline import load_pipeline
from tests.support import assert_error, post_image
from web.upload_limits import check_complete, decode_cost, inspect_upload

PHONE_PHOTOS = ROOT / "tests" / "phone_photos"


@pytest.fixture(scope="module")
def photo(one_face_photo) -> np.ndarray:
    return cv2.imread(str(one_face_photo[0]))


@pytest.fixture(scope="module")
def photo_bytes(one_face_photo) -> bytes:
    return one_face_photo[0].read_bytes()


def test_too_many_pixels_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, "PNG")  # 48 MP, a few kB compressed
    with pytest.raises(ImageError) as info:
        inspect_upload(buffer.getvalue(), max_pixels=40_000_000)
    assert info.value.code == "too_many_pixels" and "8000×6000" in str(info.value)


def test_a_jpeg_over_the_pixel_limit_is_decoded_reduced_and_costed_so(photo):
    big = cv2.resize(photo, (8000, 6000))
    baseline = cv2.imencode(".jpg", big)[1].tobytes()
    header = inspect_upload(baseline, max_pixels=40_000_000)
    assert header.reduction == 2 and header.coefficient_bytes == 0
    assert decode_cost(header) == 4000 * 3000 * 6  # only the reduced pixels are allocated
    assert decode_image(baseline, header=header).shape == (3000, 4000, 3)
    assert inspect_upload(baseline, max_pixels=1_000_000).reduction == 8
    with pytest.raises(ImageError) as info:
        inspect_upload(baseline, max_pixels=500_000)
    assert info.value.code == "too_many_pixels" and "even at 1/8" in str(info.value)
    progressive = encode(big, "JPEG", progressive=True)  # libjpeg holds every coefficient whatever the scale
    header = inspect_upload(progressive, max_pixels=40_000_000)
    assert header.coefficient_bytes >= 8000 * 6000 * 1.5 / 64 * 128
    assert decode_cost(header) == 4000 * 3000 * 6 + header.coefficient_bytes


def test_a_jpeg_is_decoded_reduced_until_its_decode_fits_the_memory_given(photo):
    big = cv2.resize(photo, (8000, 6000))
    baseline = cv2.imencode(".jpg", big)[1].tobytes()
    assert inspect_upload(baseline, max_pixels=50_000_000, max_decode_bytes=300 * MB).reduction == 1
    assert inspect_upload(baseline, max_pixels=50_000_000, max_decode_bytes=200 * MB).reduction == 2
    assert inspect_upload(baseline, max_pixels=40_000_000, max_decode_bytes=50 * MB).reduction == 4
    # Where no reduction fits the memory, the one that fits the pixels is left for the decode budget to refuse.
    assert inspect_upload(baseline, max_pixels=40_000_000, max_decode_bytes=MB).reduction == 2
    progressive = encode(big, "JPEG", progressive=True)  # 144 MB of coefficients at every reduction
    header = inspect_upload(progressive, max_pixels=40_000_000, max_decode_bytes=200 * MB)
    assert header.reduction == 4 and decode_cost(header) <= 200 * MB


def test_truncated_and_forged_files_are_refused_from_their_container():
    # A JPEG header that says 6000×6000 followed by a few hundred bytes, or by an end marker and no real scan.
    big = cv2.imencode(".jpg", np.zeros((6000, 6000), np.uint8))[1].tobytes()
    start_of_scan = big.index(b"\xff\xda")
    forged_end = big[: start_of_scan + 14] + b"\x00" * 16 + b"\xff\xd9"  # an end marker, but no real scan
    png = cv2.imencode(".png", np.zeros((3000, 3000, 3), np.uint8))[1].tobytes()
    webp = cv2.imencode(".webp", np.zeros((300, 300, 3), np.uint8))[1].tobytes()
    for name, data in [("631-byte JPEG", big[:631]), ("half a JPEG", big[: len(big) // 2]),
                       ("forged end", forged_end), ("PNG without IEND", png[:-12]),
                       ("half a PNG", png[: len(png) // 2]), ("short WebP", webp[:-5])]:
        with pytest.raises(ImageError) as info:
            check_complete(data, read_header(data))
        assert info.value.code == "not_an_image", name
    for whole in (big, png, webp):
        check_complete(whole, read_header(whole))


def test_decode_cost_follows_what_a_decode_allocates():
    def png(channels: int, dtype) -> ImageHeader:
        return read_header(cv2.imencode(".png", np.zeros((100, 200, channels), dtype))[1].tobytes())

    opaque, alpha, alpha16 = png(3, np.uint8), png(4, np.uint8), png(4, np.uint16)
    assert not opaque.has_alpha and alpha.has_alpha and alpha16.sixteen_bit
    assert decode_cost(opaque) < decode_cost(alpha) < decode_cost(alpha16)
    assert decode_cost(opaque) >= 2 * 3 * opaque.pixels  # the decoded buffer and its copy


def test_a_48_megapixel_phone_heic_is_analysed_at_half_size(client):
    """8064×6048 in 512-px tiles, as phones store it (tests/phone_photos/README.md): over MAX_PIXELS, decoded a tile
    at a time at 1/2 of each side instead of refused; a quarter where the pixels allow no more."""
    data = (PHONE_PHOTOS / "face-48mp.heic").read_bytes()
    header = inspect_upload(data, max_pixels=40_000_000, max_decode_bytes=200 * MB)
    assert header.reduction == 2 and decode_cost(header) < 40 * MB
    assert inspect_upload(data, max_pixels=10_000_000).reduction == 4
    response = post_image(client, data, "image/heic")
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["width"], body["height"], body["scale"]) == (4032, 3024, 0.5)
    assert len(body["faces"]) == 1 and body["faces"][0]["box"]["w"] > 1000
    assert_error(post_image(client, data[: len(data) // 2], "image/heic"), 415, "not_an_image")
    assert post_image(client, data, "image/heic").status_code == 200


def test_a_tiled_heic_decode_stays_within_its_decode_cost():
    """The decode budget trusts decode_cost: measured here on a 48 MP phone HEIC, in a fresh process. The slack is
    the allocator's (whole pages, its arenas), not the image's."""
    script = """
import sys
from dataclasses import replace
from pathlib import Path
from model.image_io import decode_image, read_header
from web.upload_limits import decode_cost

def kib(field):
    return next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith(field)) * 1024

data = open(sys.argv[1], "rb").read()
decode_image(open(sys.argv[2], "rb").read())  # libheif and numpy loaded and warmed up
header = replace(read_header(data), reduction=int(sys.argv[3]))
before = kib("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
decode_image(data, header)
print(kib("VmHWM:") - before, decode_cost(header))
"""
    for reduction in (1, 2):
        result = subprocess.run([sys.executable, "-c", script, str(PHONE_PHOTOS / "face-48mp.heic"),
                                 str(PHONE_PHOTOS / "grid-orientation-1.heic"), str(reduction)],
                                capture_output=True, text=True, timeout=120, cwd=ROOT, check=True)
        peak, cost = map(int, result.stdout.split())
        assert cost * 0.5 < peak <= cost + 8 * MB, (reduction, peak, cost)


def test_upload_over_the_limit_is_413(client):
    assert_error(post_image(client, b"\xff" * (11 * 1024 * 1024)), 413, "too_large")
    assert_error(post_image(client, b"\xff" * (11 * 1024 * 1024), multipart=False), 413, "too_large")


def test_decompression_bomb_is_422(client):
    buffer = io.BytesIO()
    Image.new("L", (30_000, 30_000)).save(buffer, "PNG")  # 900 MP in under 1 MB
    assert_error(post_image(client, buffer.getvalue(), "image/png"), 422, "too_many_pixels")


def test_a_48_megapixel_phone_jpeg_is_analysed_at_half_size(client, one_face_photo):
    """8064×6048 is over MAX_PIXELS (40 MP): decoded at 1/2 of each side instead of refused."""
    photo = decode_image(one_face_photo[0].read_bytes())
    big = fit_on_canvas(photo, (8064, 6048))  # upscaled 25×: a phone photo of one close face
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    del big
    response = post_image(client, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["width"], body["height"], body["scale"]) == (4032, 3024, 0.5)
    assert len(body["faces"]) == 1 and body["faces"][0]["box"]["w"] > 1000


def test_a_48_megapixel_progressive_jpeg_is_analysed_at_the_size_its_decode_memory_allows(client, one_face_photo):
    """Its coefficients alone take 146 MB, so half size would need more than DECODE_MEMORY_MB's 200: a quarter."""
    photo = decode_image(one_face_photo[0].read_bytes())
    big = fit_on_canvas(photo, (8064, 6048))
    data = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    del big
    response = post_image(client, data)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["width"], body["height"], body["scale"]) == (2016, 1512, 0.25)
    assert len(body["faces"]) == 1


def test_limits_come_from_settings(photo_bytes):
    small = create_app(Settings(max_upload_bytes=50_000, max_pixels=10_000))
    client = small.test_client()
    assert_error(post_image(client, b"\xff" * 60_000), 413, "too_large")
    assert_error(post_image(client, encode(np.zeros((200, 200, 3), np.uint8), "PNG"), "image/png"), 422,
                 "too_many_pixels")
    defaults = Settings()  # the model is loaded once per process
    assert small.extensions["mask_pipeline"] is load_pipeline(defaults.model_path)
