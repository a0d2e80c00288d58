"""Turning encoded image bytes into an upright 8-bit BGR array, the same way for training files and uploads.

Everything that bounds the cost of a decode happens before any pixel is decoded: Pillow reads the header
(format, size, colour mode, EXIF orientation), the container is walked to refuse truncated files, and
`decode_cost` says how much memory the decode will take, so that callers can refuse or queue it. A JPEG of more
pixels than allowed (a 48–50 MP phone photo) is not refused but decoded at 1/2, 1/4 or 1/8 of each side, in the
DCT domain (libjpeg's scaled decoding), so only the reduced pixels are ever allocated. OpenCV decodes JPEG, PNG
and WebP; libheif (through `pi_heif`) decodes HEIC/HEIF. Every conversion works in 8-bit
integers, a strip of rows at a time where it needs temporaries, never on float copies of the whole image.
"""

import io
import math
import re
import struct
from dataclasses import dataclass, replace

import cv2
import numpy as np
import pi_heif
from PIL import Image, UnidentifiedImageError

pi_heif.register_heif_opener()

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

# Peak bytes per pixel of a decode, measured with ru_maxrss on 40 MP images (docs/deploy.md): OpenCV's
# Python binding copies each decoded array once, so the decoded buffer counts twice; alpha images are
# decoded with their alpha (4 channels, 16-bit where the PNG is) and then composited into 3 channels.
_BYTES_PER_PIXEL_OPAQUE = 6
_BYTES_PER_PIXEL_ALPHA_8 = 8
_BYTES_PER_PIXEL_ALPHA_16 = 16
_BYTES_PER_PIXEL_HEIF = 7
_BYTES_PER_PIXEL_HEIF_ALPHA = 13

# Deflate never compresses more than about 1032:1, so a PNG whose compressed data is smaller than its
# pixels / 1032 is truncated or forged; every Huffman-coded JPEG spends at least a bit per 8×8 block.
_DEFLATE_MAX_RATIO = 1032
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
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
    reduction: int = 1  # decoded at 1/reduction of each side (JPEG only; set by inspect_image)

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


def decode_cost(header: ImageHeader) -> int:
    """Peak bytes of memory that decoding this image takes, for callers that bound concurrent decodes."""
    if header.format == "HEIF":
        per_pixel = _BYTES_PER_PIXEL_HEIF_ALPHA if header.has_alpha else _BYTES_PER_PIXEL_HEIF
    elif header.has_alpha:
        per_pixel = _BYTES_PER_PIXEL_ALPHA_16 if header.sixteen_bit else _BYTES_PER_PIXEL_ALPHA_8
    else:
        per_pixel = _BYTES_PER_PIXEL_OPAQUE
    return header.decoded_pixels * per_pixel + header.coefficient_bytes


def check_complete(data: bytes, header: ImageHeader) -> None:
    """Refuse truncated or forged files from their container alone, before a full-size buffer is allocated."""
    if header.format in ("JPEG", "MPO"):
        complete = _jpeg_complete(data, header)
    elif header.format == "PNG":
        complete = _png_complete(data, header)
    elif header.format == "WEBP":
        complete = len(data) >= 8 + int.from_bytes(data[4:8], "little")  # RIFF's size field
    else:
        complete = True  # HEIF: libheif refuses missing data itself, before it allocates the picture
    if not complete:
        raise ImageError("not_an_image", "The image data is damaged or truncated.")


def _jpeg_complete(data: bytes, header: ImageHeader) -> bool:
    """The first frame's markers lead from SOI to EOI, with at least one bit of entropy data per 8×8 block."""
    pos, scan_bytes = 2, 0
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # EOI
            blocks = ((header.width + 7) // 8) * ((header.height + 7) // 8)
            return scan_bytes * 8 >= blocks
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data up to the next marker that is not a restart or stuffing
            found = _JPEG_MARKER.search(data, pos)
            if found is None:
                return False
            scan_bytes += found.start() - pos
            pos = found.start()
    return False


def _png_complete(data: bytes, header: ImageHeader) -> bool:
    """Every chunk is whole up to IEND, and the compressed pixels are at least their size / deflate's ratio."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(data[25], 4)
    bits = data[24] * channels
    raw_bytes = header.height * (1 + (header.width * bits + 7) // 8)
    pos, compressed = 8, 0
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        if pos + 12 + length > len(data):
            return False
        if kind == b"IDAT":
            compressed += length
        elif kind == b"IEND":
            return compressed * _DEFLATE_MAX_RATIO >= raw_bytes
        pos += 12 + length
    return False


def inspect_image(data: bytes, max_pixels: int | None = None) -> ImageHeader:
    """Everything that can refuse an image before its pixels are decoded: format, pixel count, completeness.

    A JPEG over `max_pixels` comes back with the smallest `reduction` that brings it within them."""
    header = read_header(data)
    if max_pixels is not None and header.pixels > max_pixels:
        reductions = _JPEG_REDUCTIONS if header.format in ("JPEG", "MPO") else {1: None}
        fitting = [r for r in reductions if replace(header, reduction=r).decoded_pixels <= max_pixels]
        if not fitting:
            scaled = " even at 1/8 of each side" if len(reductions) > 1 else ""
            raise ImageError(
                "too_many_pixels",
                f"The image is {header.width}×{header.height} pixels; at most {max_pixels:,} pixels are allowed"
                f"{scaled}.",
            )
        header = replace(header, reduction=fitting[0])
    check_complete(data, header)
    return header


def decode_image(data: bytes, max_pixels: int | None = None, header: ImageHeader | None = None) -> np.ndarray:
    """Encoded JPEG/PNG/WebP/HEIF → upright uint8 BGR; alpha is composited on white, 16-bit scaled to 8-bit.

    `header` is what `inspect_image` returned for these bytes, when the caller has already inspected them; a
    JPEG over `max_pixels` is decoded reduced (`header.reduction`).
    """
    header = header or inspect_image(data, max_pixels)
    image = _decode_heif(data) if header.format == "HEIF" else _decode_opencv(data, header)
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


def _decode_heif(data: bytes) -> np.ndarray:
    try:
        heif = pi_heif.open_heif(data, convert_hdr_to_8bit=True)
        pixels = np.asarray(heif)
    except (ValueError, RuntimeError, OSError) as exc:
        raise ImageError("not_an_image", "The image data is damaged or truncated.") from exc
    if pixels.shape[2] == 4:
        return _composite_on_white(cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA))
    return cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)


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
