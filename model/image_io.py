"""Turning encoded image bytes into an upright 8-bit BGR array, the same way for training files and uploads.

Pillow reads the header (format, size, colour mode, EXIF orientation) without decoding a pixel, and OpenCV decodes
JPEG, PNG and WebP; libheif does both for HEIC/HEIF (`model.heif`); each refuses a file cut short. A JPEG can be
decoded at 1/2, 1/4 or 1/8 of each side, in the DCT domain (libjpeg's scaled decoding), and a phone's tiled HEIC a
tile at a time, each tile reduced as it comes, so only the reduced pixels are ever allocated.
What an upload may cost (its pixels, its decode memory, a container that cannot hold what its header promises) is
decided before this decode, in `web.upload_limits`. Every conversion works in 8-bit integers,
a strip of rows at a time where it needs temporaries, never on float copies of the whole image.
"""

import io
import math
import struct
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from model import heif

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}  # the files the batch tool and training pick from folders

# Pillow's format names decoded. MPO is a JPEG with an index of further frames (some phone cameras write one
# for depth or burst data): its first frame is the photo.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "WEBP", "HEIF"}
ACCEPTED_TEXT = "JPEG, PNG, WebP or HEIC/HEIF"

# EXIF orientation → the OpenCV operations that make the image upright.
_ORIENTATION_FIXES = {
    2: [lambda a: cv2.flip(a, 1)],
    3: [lambda a: cv2.rotate(a, cv2.ROTATE_180)],
    4: [lambda a: cv2.flip(a, 0)],
    5: [lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE), lambda a: cv2.flip(a, 1)],
    6: [lambda a: cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)],
    7: [lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE), lambda a: cv2.flip(a, 1)],
    8: [lambda a: cv2.rotate(a, cv2.ROTATE_90_COUNTERCLOCKWISE)],
}

_STRIP_BYTES = 1 << 22
_JPEG_REDUCTIONS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                    8: cv2.IMREAD_REDUCED_COLOR_8}
_COEFFICIENT_BYTES = 128  # a DCT block's 64 16-bit coefficients: libjpeg holds all of a progressive JPEG's


class ImageError(ValueError):
    """Bytes that cannot become an image; `code` says why, for the API's error answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    orientation: int
    has_alpha: bool = False
    sixteen_bit: bool = False
    coefficient_bytes: int = 0  # a progressive JPEG's whole-image DCT coefficients, held during any decode
    reduction: int = 1  # decoded at 1/reduction of each side: one of `reductions(header)`
    grid: heif.Grid | None = None  # a HEIC stored as tiles, which decode one at a time

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_pixels(self) -> int:
        return math.ceil(self.width / self.reduction) * math.ceil(self.height / self.reduction)


def read_header(data: bytes) -> ImageHeader:
    """Format, size, alpha, bit depth and EXIF orientation, without decoding pixels."""
    if not data:
        raise ImageError("empty_image", "The image is empty (0 bytes).")
    if heif.is_heif(data):
        return _read_heif_header(data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
            orientation = _orientation(img) if fmt in ("JPEG", "MPO") else 1
            header = ImageHeader(fmt, img.width, img.height, orientation, has_alpha, _png_is_16_bit(data, fmt),
                                 _progressive_coefficient_bytes(img))
    except Image.DecompressionBombError as exc:
        raise ImageError("too_many_pixels", "The image has too many pixels.") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, struct.error) as exc:
        raise ImageError("not_an_image", "The file is not a readable image.") from exc
    if header.format not in SUPPORTED_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"{header.format or 'This'} images are not supported; send {ACCEPTED_TEXT}.",
        )
    return header


def _read_heif_header(data: bytes) -> ImageHeader:
    try:
        info = heif.read_heif(data)
    except heif.HeifError as exc:
        raise ImageError("not_an_image", "The file is not a readable image.") from exc
    if info.width * info.height > 2 * Image.MAX_IMAGE_PIXELS:  # where Pillow refuses any other format's header
        raise ImageError("too_many_pixels", "The image has too many pixels.")
    # libheif turns the picture upright itself (the container's irot/imir), so EXIF orientation stays unused.
    return ImageHeader("HEIF", info.width, info.height, 1, info.has_alpha, grid=info.grid)


def _orientation(img: Image.Image) -> int:
    """EXIF orientation when it is readable and valid; 1 (as stored) otherwise: the pixels still decode."""
    try:
        value = img.getexif().get(0x0112, 1)
        orientation = int(value)
    except Exception:  # any malformed EXIF block means "no usable orientation", never a refusal
        return 1
    return orientation if orientation in _ORIENTATION_FIXES else 1


def _progressive_coefficient_bytes(img: Image.Image) -> int:
    """What libjpeg allocates for a progressive JPEG's coefficients (every block of every component), 0 otherwise."""
    if not img.info.get("progressive") or not getattr(img, "layer", None):
        return 0
    h_max = max(layer[1] for layer in img.layer)
    v_max = max(layer[2] for layer in img.layer)
    blocks = sum(math.ceil(math.ceil(img.width * h / h_max) / 8) * math.ceil(math.ceil(img.height * v / v_max) / 8)
                 for _, h, v, _ in img.layer)
    return blocks * _COEFFICIENT_BYTES


def _png_is_16_bit(data: bytes, fmt: str) -> bool:
    return fmt == "PNG" and len(data) > 24 and data[24] == 16  # IHDR's bit depth


def reductions(header: ImageHeader) -> list[int]:
    """The reductions this image can be decoded at, smallest first: libjpeg's 1, 2, 4 and 8 for a JPEG, those its
    tiles divide into for a tiled HEIC, 1 otherwise."""
    if header.format in ("JPEG", "MPO"):
        return list(_JPEG_REDUCTIONS)
    return heif.reductions(header.grid)


def decode_image(data: bytes, header: ImageHeader | None = None) -> np.ndarray:
    """Encoded JPEG/PNG/WebP/HEIF → upright uint8 BGR; alpha is composited on white, 16-bit scaled to 8-bit.

    `header` is what `read_header` returned for these bytes when the caller has already read it, with the
    `reduction` to decode at; without one the header is read here and the image decoded whole.
    """
    header = header or read_header(data)
    image = _decode_heif(data, header) if header.format == "HEIF" else _decode_opencv(data, header)
    for fix in _ORIENTATION_FIXES.get(header.orientation, []):
        image = fix(image)
    return image


def _decode_opencv(data: bytes, header: ImageHeader) -> np.ndarray:
    colour = _JPEG_REDUCTIONS[header.reduction]
    flags = cv2.IMREAD_UNCHANGED if header.has_alpha else colour | cv2.IMREAD_IGNORE_ORIENTATION
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if pixels is None or pixels.size == 0:
        raise ImageError("not_an_image", "The image data is damaged or truncated.")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        return _composite_on_white(pixels)
    if pixels.ndim == 2:  # grey with a transparent colour key (tRNS): OpenCV reads it without the key
        return cv2.cvtColor(_to_8_bit(pixels), cv2.COLOR_GRAY2BGR)
    return _to_8_bit(pixels)


def _decode_heif(data: bytes, header: ImageHeader) -> np.ndarray:
    try:
        pixels = heif.decode_heif(data, header.grid, header.has_alpha, header.reduction)
    except heif.HeifError as exc:
        raise ImageError("not_an_image", "The image data is damaged or truncated.") from exc
    return _composite_on_white(pixels) if pixels.shape[2] == 4 else pixels


def _to_8_bit(pixels: np.ndarray) -> np.ndarray:
    return (pixels >> 8).astype(np.uint8) if pixels.dtype == np.uint16 else pixels


def _composite_on_white(bgra: np.ndarray) -> np.ndarray:
    """(colour × alpha + white × (255 − alpha)) / 255, rounded, in 16-bit integers a strip of rows at a time."""
    height, width = bgra.shape[:2]
    out = np.empty((height, width, 3), np.uint8)
    rows = max(1, _STRIP_BYTES // (width * bgra.itemsize * 4))
    for top in range(0, height, rows):
        strip = _to_8_bit(bgra[top : top + rows])
        alpha = strip[:, :, 3:4].astype(np.uint16)
        blended = strip[:, :, :3] * alpha + 255 * (255 - alpha) + 127
        out[top : top + rows] = blended // 255
    return out
