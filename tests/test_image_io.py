"""Uploads and training files decode to upright 8-bit BGR, and anything else is refused with a reason."""

import io
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pi_heif
import pytest
from PIL import Image

from harness.images import encode
from harness.paths import ROOT
from model.image_io import ImageError, decode_image, read_header, reductions


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


PHONE_PHOTOS = Path(__file__).resolve().parent / "phone_photos"


def jpeg_with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """The JPEG with one more APP1 segment (EXIF) right after its start marker."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_mpo_from_a_phone_camera_decodes_its_first_frame(photo):
    first = Image.fromarray(cv2.cvtColor(photo, cv2.COLOR_BGR2RGB))
    depth = Image.fromarray(np.zeros_like(photo))
    buffer = io.BytesIO()
    first.save(buffer, "MPO", save_all=True, append_images=[depth], quality=95)
    assert read_header(buffer.getvalue()).format == "MPO"
    assert close(decode_image(buffer.getvalue()), photo)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF, as it should
def test_malformed_exif_orientation_is_ignored_and_the_pixels_decode(photo):
    jpeg = encode(photo, "JPEG", quality=95)
    # An IFD whose orientation entry is ASCII "abc" instead of a SHORT, as some phone software writes it.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08\x00\x01" + struct.pack(">HHI", 0x0112, 2, 4) + b"abc\x00" + b"\x00" * 4
    for exif in (tiff, tiff[:13], b"MM\x00\x2a\xff\xff\xff\x00", tiff.replace(b"abc\x00", b"\x00\x09\x00\x00")):
        data = jpeg_with_app1(jpeg, b"Exif\x00\x00" + exif)
        assert read_header(data).orientation == 1
        assert close(decode_image(data), photo)


def libheif_whole(data: bytes) -> np.ndarray:
    """The reference: libheif's whole-image decode through pi_heif's own Python layer, as BGR."""
    whole = pi_heif.open_heif(data, convert_hdr_to_8bit=True)
    return np.asarray(whole)[:, :, ::-1].copy()


def test_heic_from_an_iphone_decodes():
    # A face crop from face-mask (MIT), saved as HEIC by libheif: tests/phone_photos/README.md.
    data = (PHONE_PHOTOS / "face.heic").read_bytes()
    assert read_header(data).format == "HEIF"
    image = decode_image(data)
    assert image.shape == (123, 141, 3) and image.dtype == np.uint8 and 60 < image.mean() < 200
    assert np.array_equal(image, libheif_whole(data))
    with pytest.raises(ImageError) as info:
        decode_image(data[: len(data) // 2])
    assert info.value.code == "not_an_image"


@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_tiled_heic_decodes_a_tile_at_a_time_upright_as_libheif_decodes_it_whole(orientation):
    """A scene photo stored as a grid of 128-px tiles, turned or mirrored by its container as a phone would
    (tests/phone_photos/README.md). libheif's own whole-image decode is the reference; tiles are converted to
    colour before they are turned, libheif turns the chroma first, so colours at sharp edges differ a little."""
    data = (PHONE_PHOTOS / f"grid-orientation-{orientation}.heic").read_bytes()
    header = read_header(data)
    assert header.grid is not None and (header.width, header.height) == (600, 405)
    assert reductions(header) == [1, 2, 4, 8]
    reference = libheif_whole(data)
    image = decode_image(data, header)
    assert image.shape == reference.shape
    grey, grey_reference = (cv2.cvtColor(a, cv2.COLOR_BGR2GRAY).astype(int) for a in (image, reference))
    assert np.abs(grey - grey_reference).max() <= 8 and np.abs(grey - grey_reference).mean() < 0.01
    assert np.abs(image.astype(int) - reference).mean() < 0.5
    half = decode_image(data, replace(header, reduction=2))
    assert half.shape == (203, 300, 3)
    shrunk = cv2.resize(reference, (300, 203), interpolation=cv2.INTER_AREA)
    assert np.abs(half.astype(int) - shrunk).mean() < 1.5


# Bytes changed by a fuzzer (offset: value) in committed fixtures. The first made pi_heif's Python layer, which read
# every metadata block at open, crash the process (SIGSEGV); the second made it raise SyntaxError (a 500).
MALFORMED_HEIC = {"grid-orientation-6.heic": ({1018: 0o313, 1131: 0o346, 1205: 0o277}, "ok"),
                  "face.heic": ({256: 0o271, 733: 0o006, 780: 0o211, 1268: 0o123}, "not_an_image")}


@pytest.mark.parametrize("name", MALFORMED_HEIC)
def test_a_malformed_heic_is_read_or_refused_and_never_takes_the_process_down(name, tmp_path):
    patches, outcome = MALFORMED_HEIC[name]
    data = bytearray((PHONE_PHOTOS / name).read_bytes())
    for offset, value in patches.items():
        data[offset] = value
    (tmp_path / name).write_bytes(data)
    script = """
import sys
from model.image_io import ImageError, decode_image, read_header
data = open(sys.argv[1], "rb").read()
try:
    print("ok", decode_image(data, read_header(data)).shape)
except ImageError as exc:
    print(exc.code)
"""
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / name)], capture_output=True, text=True,
                            timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-500:]
    assert result.stdout.split()[0] == outcome


def test_partial_alpha_is_blended_in_integers_like_the_exact_formula(photo):
    rgba = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)
    rgba[:, :, 3] = np.random.default_rng(0).integers(0, 256, rgba.shape[:2], dtype=np.uint8)
    alpha = rgba[:, :, 3:4] / 255.0
    exact = (rgba[:, :, :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    assert np.array_equal(decode_image(cv2.imencode(".png", rgba)[1].tobytes()), exact)
    sixteen = cv2.imencode(".png", rgba.astype(np.uint16) * 257)[1].tobytes()
    assert read_header(sixteen).sixteen_bit
    assert np.array_equal(decode_image(sixteen), exact)


def test_truncated_files_are_refused_by_the_decoders_themselves(photo):
    """Training and the batch tool decode without the container check uploads get (web.upload_limits): a file cut
    short is still refused, by Pillow's header reader or by the decoder, never decoded with a grey remainder."""
    rgba16 = cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA).astype(np.uint16) * 257
    files = {"JPEG": encode(photo, "JPEG"), "progressive JPEG": encode(photo, "JPEG", progressive=True),
             "PNG": encode(photo, "PNG"), "16-bit RGBA PNG": cv2.imencode(".png", rgba16)[1].tobytes(),
             "WebP": encode(photo, "WEBP"), "HEIC": (PHONE_PHOTOS / "face.heic").read_bytes(),
             "tiled HEIC": (PHONE_PHOTOS / "grid-orientation-6.heic").read_bytes()}
    for name, data in files.items():
        for end in (len(data) // 4, len(data) // 2, len(data) * 3 // 4, len(data) - 4):
            with pytest.raises(ImageError) as info:
                decode_image(data[:end])
            assert info.value.code == "not_an_image", (name, end)
