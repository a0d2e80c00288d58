"""An upload is refused, or decoded reduced, from its header and container alone, and its decode is costed
before any pixel is decoded."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from harness.images import encode
from model.image_io import ImageError, ImageHeader, decode_image, read_header
from web.upload_limits import check_complete, decode_cost, inspect_upload


@pytest.fixture(scope="module")
def photo(one_face_photo) -> np.ndarray:
    return cv2.imread(str(one_face_photo[0]))


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
