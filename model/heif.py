"""HEIC/HEIF through libheif's C API: the header, and the pixels, whole or a tile at a time.

pi_heif's wheel bundles libheif (1.23, with libde265), but its Python layer reads every metadata block of a file
before it is asked for anything, and a malformed block crashed the whole process (a segmentation fault while
reading an upload's header); it also exposes only whole-image decodes. This module calls the same library
through ctypes and asks it only for what the app needs: the size, alpha, the tile grid, the pixels.

Phones store a HEIC photo as a grid of HEVC tiles (512×512 on most). Such a photo is decoded a tile at a time,
each tile reduced as it comes, so a 48 MP photo is never held at full size. Tiles are decoded as stored
(libheif's rotated tiling misplaces partial tiles), and the photo's rotation and mirroring (`irot`, `imir`) are
read from the container and applied to the reduced image.
"""

import contextlib
import ctypes
import math
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pi_heif

# ISO/IEC 23008-12 brands of HEVC-coded images ("mif1" alone is also AVIF's, which says so in its brands).
_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_COLORSPACE_RGB, _CHROMA_RGB, _CHROMA_RGBA, _CHANNEL_INTERLEAVED = 1, 10, 11, 10


class HeifError(ValueError):
    """libheif could not read or decode the file; the message is libheif's."""


@dataclass(frozen=True)
class Grid:
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    width: int  # as stored, before rotation
    height: int
    transforms: tuple[tuple[str, int], ...]  # ("irot", counter-clockwise degrees) or ("imir", axis), in order


@dataclass(frozen=True)
class HeifInfo:
    width: int  # upright, as shown
    height: int
    has_alpha: bool
    grid: Grid | None  # None: decoded whole (one picture, or a grid with alpha or a crop)


def is_heif(data: bytes) -> bool:
    """An ISO base media file whose brands say HEVC-coded image (not AVIF)."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    size = min(int.from_bytes(data[:4], "big"), len(data))
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, size - 3, 4)}
    return bool(brands & _BRANDS) and b"avif" not in brands and b"avis" not in brands


def read_heif(data: bytes) -> HeifInfo:
    """Size, alpha and tiling of the primary image, from the container alone."""
    with _primary(data) as (lib, handle):
        width, height = lib.heif_image_handle_get_width(handle), lib.heif_image_handle_get_height(handle)
        has_alpha = bool(lib.heif_image_handle_has_alpha_channel(handle))
        tiling = _Tiling(version=1)
        _check(lib.heif_image_handle_get_image_tiling(handle, 0, ctypes.byref(tiling)))
    if width <= 0 or height <= 0:
        raise HeifError("the primary image has no size")
    grid = None
    tiled = tiling.num_columns * tiling.num_rows > 1 and tiling.tile_width > 0 and tiling.tile_height > 0
    if tiled and not has_alpha and (transforms := _transforms(data)) is not None:
        grid = Grid(tiling.num_columns, tiling.num_rows, tiling.tile_width, tiling.tile_height, tiling.image_width,
                    tiling.image_height, transforms)
    return HeifInfo(width, height, has_alpha, grid)


def reductions(grid: Grid | None) -> list[int]:
    """1/1 to 1/8 of each side for a grid whose tiles divide evenly (phones' 512-px tiles do); else whole only."""
    if grid is None:
        return [1]
    return [r for r in (1, 2, 4, 8) if grid.tile_width % r == 0 and grid.tile_height % r == 0]


def decode_heif(data: bytes, grid: Grid | None, has_alpha: bool, reduction: int = 1) -> np.ndarray:
    """Upright uint8 BGR at 1/reduction of each side (BGRA where the image has alpha)."""
    if grid is not None:
        return _decode_grid(data, grid, reduction)
    if reduction != 1:
        raise ValueError(f"a HEIC stored whole decodes at full size only, not 1/{reduction}")
    with _primary(data) as (lib, handle):
        image = ctypes.c_void_p()
        chroma = _CHROMA_RGBA if has_alpha else _CHROMA_RGB
        _check(lib.heif_decode_image(handle, ctypes.byref(image), _COLORSPACE_RGB, chroma, None))
        try:
            pixels = _plane(lib, image, 4 if has_alpha else 3)
            return cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if has_alpha else cv2.COLOR_RGB2BGR)
        finally:
            lib.heif_image_release(image)


def _decode_grid(data: bytes, grid: Grid, reduction: int) -> np.ndarray:
    out = np.empty((math.ceil(grid.height / reduction), math.ceil(grid.width / reduction), 3), np.uint8)
    tile_size = (grid.tile_width // reduction, grid.tile_height // reduction)
    with _primary(data) as (lib, handle):
        options = lib.heif_decoding_options_alloc()
        ctypes.memset(options + 1, 1, 1)  # heif_decoding_options.ignore_transformations, after its version byte
        try:
            for row in range(grid.rows):
                for column in range(grid.columns):
                    tile = _decode_tile(lib, handle, options, column, row)
                    if tile.shape[:2] != (grid.tile_height, grid.tile_width):
                        raise HeifError(f"tile {column},{row} is {tile.shape[1]}×{tile.shape[0]}, not the grid's")
                    if reduction > 1:
                        tile = cv2.resize(tile, tile_size, interpolation=cv2.INTER_AREA)
                    top, left = row * tile_size[1], column * tile_size[0]
                    visible = out[top : top + tile_size[1], left : left + tile_size[0]]
                    visible[:] = tile[: visible.shape[0], : visible.shape[1], ::-1]  # RGB → BGR
        finally:
            lib.heif_decoding_options_free(options)
    for kind, value in grid.transforms:
        out = _apply(out, kind, value)
    return out


def _decode_tile(lib: ctypes.CDLL, handle: int, options: int, column: int, row: int) -> np.ndarray:
    image = ctypes.c_void_p()
    _check(lib.heif_image_handle_decode_image_tile(handle, ctypes.byref(image), _COLORSPACE_RGB, _CHROMA_RGB,
                                                   options, column, row))
    try:
        return _plane(lib, image, 3).copy()
    finally:
        lib.heif_image_release(image)


def _plane(lib: ctypes.CDLL, image: ctypes.c_void_p, channels: int) -> np.ndarray:
    """A view of a decoded image's interleaved pixels, valid until the image is released."""
    stride = ctypes.c_int()
    plane = lib.heif_image_get_plane_readonly(image, _CHANNEL_INTERLEAVED, ctypes.byref(stride))
    width = lib.heif_image_get_width(image, _CHANNEL_INTERLEAVED)
    height = lib.heif_image_get_height(image, _CHANNEL_INTERLEAVED)
    if not plane or width <= 0 or height <= 0 or stride.value < width * channels:
        raise HeifError("libheif gave no pixels")
    rows = np.ctypeslib.as_array(plane, shape=(height, stride.value))
    return rows[:, : width * channels].reshape(height, width, channels)


def _apply(image: np.ndarray, kind: str, value: int) -> np.ndarray:
    if kind == "irot":
        turns = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
        return cv2.rotate(image, turns[value]) if value else image
    return cv2.flip(image, 1 if value else 0)  # imir as libheif reads it: axis 1 mirrors left-right, 0 top-bottom


# --- libheif through ctypes ---

class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _Tiling(ctypes.Structure):
    _fields_ = [("version", ctypes.c_int), ("num_columns", ctypes.c_uint32), ("num_rows", ctypes.c_uint32),
                ("tile_width", ctypes.c_uint32), ("tile_height", ctypes.c_uint32),
                ("image_width", ctypes.c_uint32), ("image_height", ctypes.c_uint32),
                ("top_offset", ctypes.c_uint32), ("left_offset", ctypes.c_uint32),
                ("number_of_extra_dimensions", ctypes.c_uint8), ("extra_dimension_size", ctypes.c_uint32 * 8)]


_VOID = ctypes.c_void_p
_SIGNATURES = {
    "heif_context_alloc": (_VOID, []),
    "heif_context_free": (None, [_VOID]),
    "heif_context_read_from_memory_without_copy": (_Error, [_VOID, ctypes.c_char_p, ctypes.c_size_t, _VOID]),
    "heif_context_get_primary_image_handle": (_Error, [_VOID, ctypes.POINTER(_VOID)]),
    "heif_image_handle_release": (None, [_VOID]),
    "heif_image_handle_get_width": (ctypes.c_int, [_VOID]),
    "heif_image_handle_get_height": (ctypes.c_int, [_VOID]),
    "heif_image_handle_has_alpha_channel": (ctypes.c_int, [_VOID]),
    "heif_image_handle_get_image_tiling": (_Error, [_VOID, ctypes.c_int, ctypes.POINTER(_Tiling)]),
    "heif_decode_image": (_Error, [_VOID, ctypes.POINTER(_VOID), ctypes.c_int, ctypes.c_int, _VOID]),
    "heif_image_handle_decode_image_tile": (_Error, [_VOID, ctypes.POINTER(_VOID), ctypes.c_int, ctypes.c_int,
                                                     _VOID, ctypes.c_uint32, ctypes.c_uint32]),
    "heif_decoding_options_alloc": (_VOID, []),
    "heif_decoding_options_free": (None, [_VOID]),
    "heif_image_get_plane_readonly": (ctypes.POINTER(ctypes.c_uint8), [_VOID, ctypes.c_int,
                                                                       ctypes.POINTER(ctypes.c_int)]),
    "heif_image_get_width": (ctypes.c_int, [_VOID, ctypes.c_int]),
    "heif_image_get_height": (ctypes.c_int, [_VOID, ctypes.c_int]),
    "heif_image_release": (None, [_VOID]),
}
_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _libheif() -> ctypes.CDLL:
    """The libheif of pi_heif's wheel, with the signatures this module uses."""
    global _lib
    with _lib_lock:
        if _lib is None:
            package = Path(pi_heif.__file__).resolve().parent  # wheels keep their libraries beside it
            found = [*package.parent.glob("pi_heif.libs/*heif*"), *package.glob(".dylibs/libheif*")]
            if not found:
                raise ImportError(f"pi_heif's bundled libheif is not beside {package}")
            lib = ctypes.CDLL(str(found[0]))
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(lib, name)
                function.restype, function.argtypes = restype, argtypes
            _lib = lib
    return _lib


@contextlib.contextmanager
def _primary(data: bytes) -> Iterator[tuple[ctypes.CDLL, ctypes.c_void_p]]:
    """libheif and the primary image's handle; libheif reads `data` in place, so it is held until the block ends."""
    lib = _libheif()
    context, handle = lib.heif_context_alloc(), ctypes.c_void_p()
    try:
        _check(lib.heif_context_read_from_memory_without_copy(context, data, len(data), None))
        _check(lib.heif_context_get_primary_image_handle(context, ctypes.byref(handle)))
        yield lib, handle
    finally:
        if handle:
            lib.heif_image_handle_release(handle)
        lib.heif_context_free(context)


def _check(error: _Error) -> None:
    if error.code:
        raise HeifError((error.message or b"").decode(errors="replace"))


# --- the primary item's transformations, from the container's boxes ---

def _transforms(data: bytes) -> tuple[tuple[str, int], ...] | None:
    """Rotation and mirroring of the primary item, in the order its properties list them (ISO/IEC 23008-12);
    None where it has a clean aperture (a crop) or the boxes cannot be read."""
    try:
        meta = _child(data, 0, len(data), b"meta")
        if meta is None:
            return None
        body = (meta[0] + 4, meta[1])  # meta is a full box: version and flags first
        pitm, iprp = _child(data, *body, b"pitm"), _child(data, *body, b"iprp")
        if pitm is None or iprp is None:
            return None
        primary = struct.unpack_from(">H" if data[pitm[0]] == 0 else ">I", data, pitm[0] + 4)[0]
        ipco, ipma = _child(data, *iprp, b"ipco"), _child(data, *iprp, b"ipma")
        if ipco is None or ipma is None:
            return None
        properties = list(_boxes(data, *ipco))
        transforms = []
        for index in _associations(data, ipma, primary):
            kind, start, _ = properties[index - 1]
            if kind == b"clap":
                return None
            if kind == b"irot":
                transforms.append(("irot", (data[start] & 3) * 90))
            elif kind == b"imir":
                transforms.append(("imir", data[start] & 1))
        return tuple(transforms)
    except (struct.error, IndexError):
        return None


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box between start and end."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise IndexError("a box overruns its parent")
        yield kind, start + header, start + size
        start += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _associations(data: bytes, ipma: tuple[int, int], item: int) -> list[int]:
    """The 1-based property indices that ipma associates with `item`."""
    version, flags = data[ipma[0]], int.from_bytes(data[ipma[0] + 1 : ipma[0] + 4], "big")
    pos = ipma[0] + 4
    (entries,) = struct.unpack_from(">I", data, pos)
    pos += 4
    for _ in range(entries):
        (item_id,) = struct.unpack_from(">H" if version < 1 else ">I", data, pos)
        pos += 2 if version < 1 else 4
        count, pos = data[pos], pos + 1
        indices = []
        for _ in range(count):
            if flags & 1:
                (value,) = struct.unpack_from(">H", data, pos)
                indices.append(value & 0x7FFF)
                pos += 2
            else:
                indices.append(data[pos] & 0x7F)
                pos += 1
        if item_id == item:
            return [i for i in indices if i]
    return []
