"""What an upload may cost before any of its pixels is decoded, all read from its header and container.

An image over MAX_PIXELS is refused, or, when it is a JPEG or a tiled HEIC, decoded at the smallest reduction that
fits the pixels and the decode memory (a 48 MP phone photo is analysed at half size, or at a quarter when it is a
progressive JPEG).
`decode_cost` says how much memory its decode will take, so that `web.uploads.DecodeBudget` can refuse or queue
it. A file whose container does not hold the data its header promises (truncated, or forged to claim many pixels
in a few bytes) is refused before a full-size buffer exists.
"""

import re
from dataclasses import replace

from model.image_io import ImageError, ImageHeader, read_header, reductions

# Peak bytes per pixel of a decode, measured with ru_maxrss on 40 MP images (docs/deploy.md): OpenCV's
# Python binding copies each decoded array once, so the decoded buffer counts twice; alpha images are
# decoded with their alpha (4 channels, 16-bit where the PNG is) and then composited into 3 channels.
_BYTES_PER_PIXEL_OPAQUE = 6
_BYTES_PER_PIXEL_ALPHA_8 = 8
_BYTES_PER_PIXEL_ALPHA_16 = 16
# A HEIC stored whole, through libheif (model.heif): its YCbCr planes, its RGB(A) and our BGR(A) copy; measured
# 7.5 and 8.3 bytes a pixel on 20 MP images, with VmHWM.
_BYTES_PER_PIXEL_HEIF = 8
_BYTES_PER_PIXEL_HEIF_ALPHA = 9
# A tiled HEIC: the reduced image (and its rotated copy when the photo is turned), plus one tile in flight
# (libheif's YCbCr and RGB planes, its copy, its reduction).
_BYTES_PER_PIXEL_HEIF_GRID = 3
_BYTES_PER_TILE_PIXEL = 12

# Deflate never compresses more than about 1032:1, so a PNG whose compressed data is smaller than its
# pixels / 1032 is truncated or forged; every Huffman-coded JPEG spends at least a bit per 8×8 block.
_DEFLATE_MAX_RATIO = 1032
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def inspect_upload(data: bytes, max_pixels: int, max_decode_bytes: int | None = None) -> ImageHeader:
    """Everything that can refuse an upload before its pixels are decoded: format, pixel count, completeness.

    A JPEG or a tiled HEIC comes back with the smallest `reduction` that brings it within `max_pixels` and, where one
    does, within `max_decode_bytes` of decode memory (a progressive JPEG's coefficients cost the same at every
    reduction)."""
    header = read_header(data)
    options = [replace(header, reduction=r) for r in reductions(header)]
    fitting = [h for h in options if h.decoded_pixels <= max_pixels]
    if not fitting:
        scaled = " even at 1/8 of each side" if len(options) > 1 else ""
        raise ImageError(
            "too_many_pixels",
            f"The image is {header.width}×{header.height} pixels; at most {max_pixels:,} pixels are allowed"
            f"{scaled}.",
        )
    within_memory = [h for h in fitting if max_decode_bytes is None or decode_cost(h) <= max_decode_bytes]
    header = (within_memory or fitting)[0]
    check_complete(data, header)
    return header


def decode_cost(header: ImageHeader) -> int:
    """Peak bytes of memory that decoding this image takes, for callers that bound concurrent decodes."""
    if grid := header.grid:
        copies = 2 if grid.transforms else 1
        tile = grid.tile_width * grid.tile_height
        return header.decoded_pixels * _BYTES_PER_PIXEL_HEIF_GRID * copies + tile * _BYTES_PER_TILE_PIXEL
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
