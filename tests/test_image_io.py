"""Uploads and training files decode to upright 8-bit BGR, and anything else is refused with a reason."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from model.image_io import ImageError, decode_image, read_header
from tests.support import encode


@pytest.fixture(scope="module")
def photo(one_face_photo) -> np.ndarray:
    return cv2.imread(str(one_face_photo[0]))


def close(a: np.ndarray, b: np.ndarray, tolerance: float = 6.0) -> bool:
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < tolerance


def test_jpeg_png_webp_decode_to_bgr(photo):
    for fmt in ("JPEG", "PNG", "WEBP"):
        decoded = decode_image(encode(photo, fmt))
        assert decoded.dtype == np.uint8 and close(decoded, photo), fmt


def test_exif_rotation_is_applied(photo):
    # A phone stores the sensor's pixels sideways and says "rotate 90° clockwise" (orientation 6).
    sideways = cv2.rotate(photo, cv2.ROTATE_90_COUNTERCLOCKWISE)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(sideways, "JPEG", exif=exif.tobytes(), quality=95)
    assert read_header(data).orientation == 6
    assert close(decode_image(data), photo)


def test_grayscale_cmyk_and_16_bit_become_bgr(photo):
    gray = cv2.cvtColor(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert close(decode_image(encode(photo, "JPEG", "L")), gray)
    assert close(decode_image(encode(photo, "PNG", "L")), gray, 1.0)
    assert close(decode_image(encode(photo, "JPEG", "CMYK")), photo, 12.0)
    sixteen = cv2.imencode(".png", photo.astype(np.uint16) * 257)[1].tobytes()
    assert np.array_equal(decode_image(sixteen), photo)


def test_alpha_is_composited_on_white(photo):
    rgba = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    rgba[:, : photo.shape[1] // 2, 3] = 0  # left half fully transparent
    decoded = decode_image(cv2.imencode(".png", rgba)[1].tobytes())
    assert (decoded[:, : photo.shape[1] // 2] == 255).all()
    assert np.array_equal(decoded[:, photo.shape[1] // 2 :], photo[:, photo.shape[1] // 2 :])


@pytest.mark.parametrize(
    "make, code",
    [
        (lambda p: b"", "empty_image"),
        (lambda p: b"hello, this is text and not a picture", "not_an_image"),
        (lambda p: encode(p, "JPEG")[: len(encode(p, "JPEG")) // 2], "not_an_image"),
        (lambda p: encode(p, "GIF"), "unsupported_format"),
        (lambda p: encode(p, "BMP"), "unsupported_format"),
    ],
    ids=["empty", "text", "truncated-jpeg", "gif", "bmp"],
)
def test_bad_bytes_are_refused_with_a_reason(photo, make, code):
    with pytest.raises(ImageError) as info:
        decode_image(make(photo))
    assert info.value.code == code and str(info.value)


def test_too_many_pixels_is_refused_before_decoding():
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, "PNG")  # 48 MP, a few kB compressed
    with pytest.raises(ImageError) as info:
        decode_image(buffer.getvalue(), max_pixels=40_000_000)
    assert info.value.code == "too_many_pixels" and "8000×6000" in str(info.value)
