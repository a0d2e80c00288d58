"""Turning encoded image bytes into an upright 8-bit BGR array, the same way for training files and uploads.

Pillow reads only the header (format, size, EXIF orientation) so that oversized images are refused before
any pixel is decoded; OpenCV decodes the pixels.
"""

import io
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

SUPPORTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}

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


def read_header(data: bytes) -> ImageHeader:
    """Format, size and EXIF orientation, without decoding pixels."""
    if not data:
        raise ImageError("empty_image", "The image is empty (0 bytes).")
    try:
        with Image.open(io.BytesIO(data)) as img:
            orientation = img.getexif().get(0x0112, 1) if img.format == "JPEG" else 1
            header = ImageHeader(img.format or "", img.width, img.height, int(orientation or 1))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError("not_an_image", "The file is not a readable image.") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError("too_many_pixels", "The image has too many pixels.") from exc
    if header.format not in SUPPORTED_FORMATS:
        raise ImageError(
            "unsupported_format",
            f"{header.format or 'This'} images are not supported; send JPEG, PNG or WebP.",
        )
    return header


def decode_image(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """Encoded JPEG/PNG/WebP → upright uint8 BGR; alpha is composited on white, 16-bit scaled to 8-bit."""
    header = read_header(data)
    if max_pixels is not None and header.width * header.height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"The image is {header.width}×{header.height} pixels; at most {max_pixels:,} pixels are allowed.",
        )
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if pixels is None or pixels.size == 0:
        raise ImageError("not_an_image", "The image data is damaged or truncated.")
    image = _to_bgr8(pixels)
    for fix in _ORIENTATION_FIXES.get(header.orientation, []):
        image = fix(image)
    return image


def _to_bgr8(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype == np.uint16:
        pixels = (pixels >> 8).astype(np.uint8)
    elif pixels.dtype != np.uint8:
        pixels = cv2.normalize(pixels, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    if pixels.ndim == 2:
        return cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:4].astype(np.float32) / 255.0
        white = np.full_like(pixels[:, :, :3], 255, dtype=np.float32)
        return (pixels[:, :, :3] * alpha + white * (1.0 - alpha)).round().astype(np.uint8)
    return pixels[:, :, :3]
