"""Phone HEIC photos decoded a tile at a time, each tile reduced as it comes, so that a 48 MP photo is never held
at full size.

Phones store a HEIC photo as a grid of HEVC tiles (512×512 on most). libheif (1.19 and later) decodes one tile on
request; `pi_heif` bundles such a libheif but exposes only whole-image decodes, so this module reaches the same
library through ctypes. Tiles are decoded as stored (libheif's rotated tiling misplaces partial tiles), and the
photo's rotation and mirroring (`irot`, `imir`) are read from the container and applied to the reduced image.
"""

import ctypes
import math
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pi_heif

_COLORSPACE_RGB, _CHROMA_INTERLEAVED_RGB, _CHANNEL_INTERLEAVED = 1, 10, 10


class _Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int), ("message", ctypes.c_char_p)]


class _Tiling(ctypes.Structure):
    _fields_ = [("version", ctypes.c_int), ("num_columns", ctypes.c_uint32), ("num_rows", ctypes.c_uint32),
                ("tile_width", ctypes.c_uint32), ("tile_height", ctypes.c_uint32),
                ("image_width", ctypes.c_uint32), ("image_height", ctypes.c_uint32),
                ("top_offset", ctypes.c_uint32), ("left_offset", ctypes.c_uint32),
                ("number_of_extra_dimensions", ctypes.c_uint8), ("extra_dimension_size", ctypes.c_uint32 * 8)]


@dataclass(frozen=True)
class Grid:
    columns: int
    rows: int
    tile_width: int
    tile_height: int
    width: int  # as stored, before rotation
    height: int
    transforms: tuple[tuple[str, int], ...]  # ("irot", counter-clockwise degrees) or ("imir", axis), in order


class HeifGridError(ValueError):
    """libheif could not read or decode the file."""


_lib = None
_lib_lock = threading.Lock()


def _libheif() -> ctypes.CDLL:
    """The libheif that pi_heif's wheel bundles, with the signatures used here."""
    global _lib
    with _lib_lock:
        if _lib is None:
            libs = Path(pi_heif.__file__).resolve().parent.parent / "pi_heif.libs"
            lib = ctypes.CDLL(str(next(libs.glob("libheif-*.so*"))))
            void_p = ctypes.c_void_p
            signatures = {
                "heif_context_alloc": (void_p, []),
                "heif_context_free": (None, [void_p]),
                "heif_context_read_from_memory_without_copy": (_Error, [void_p, ctypes.c_char_p, ctypes.c_size_t,
                                                                       void_p]),
                "heif_context_get_primary_image_handle": (_Error, [void_p, ctypes.POINTER(void_p)]),
                "heif_image_handle_release": (None, [void_p]),
                "heif_image_handle_has_alpha_channel": (ctypes.c_int, [void_p]),
                "heif_image_handle_get_image_tiling": (_Error, [void_p, ctypes.c_int, ctypes.POINTER(_Tiling)]),
                "heif_image_handle_decode_image_tile": (_Error, [void_p, ctypes.POINTER(void_p), ctypes.c_int,
                                                                 ctypes.c_int, void_p, ctypes.c_uint32,
                                                                 ctypes.c_uint32]),
                "heif_decoding_options_alloc": (void_p, []),
                "heif_decoding_options_free": (None, [void_p]),
                "heif_image_get_plane_readonly": (ctypes.POINTER(ctypes.c_uint8), [void_p, ctypes.c_int,
                                                                                   ctypes.POINTER(ctypes.c_int)]),
                "heif_image_get_width": (ctypes.c_int, [void_p, ctypes.c_int]),
                "heif_image_get_height": (ctypes.c_int, [void_p, ctypes.c_int]),
                "heif_image_release": (None, [void_p]),
            }
            for name, (restype, argtypes) in signatures.items():
                function = getattr(lib, name)
                function.restype, function.argtypes = restype, argtypes
            _lib = lib
    return _lib


class _Primary:
    """The primary image of HEIF bytes, open in libheif (which reads `data` in place) until the block ends."""

    def __init__(self, data: bytes) -> None:
        self.lib, self.data = _libheif(), data
        self.context, self.handle = self.lib.heif_context_alloc(), ctypes.c_void_p()

    def __enter__(self) -> "_Primary":
        _check(self.lib.heif_context_read_from_memory_without_copy(self.context, self.data, len(self.data), None))
        _check(self.lib.heif_context_get_primary_image_handle(self.context, ctypes.byref(self.handle)))
        return self

    def __exit__(self, *exc) -> None:
        if self.handle:
            self.lib.heif_image_handle_release(self.handle)
        self.lib.heif_context_free(self.context)


def _check(error: _Error) -> None:
    if error.code:
        raise HeifGridError((error.message or b"").decode(errors="replace"))


def read_grid(data: bytes) -> Grid | None:
    """The tile grid of a HEIC's primary image, from its container; None where it is one picture, has an alpha
    plane, or is cropped (`clap`), which the whole-image decode handles."""
    transforms = _transforms(data)
    if transforms is None:
        return None
    with _Primary(data) as primary:
        if primary.lib.heif_image_handle_has_alpha_channel(primary.handle):
            return None
        tiling = _Tiling(version=1)
        _check(primary.lib.heif_image_handle_get_image_tiling(primary.handle, 0, ctypes.byref(tiling)))
    if tiling.num_columns * tiling.num_rows <= 1:
        return None
    return Grid(tiling.num_columns, tiling.num_rows, tiling.tile_width, tiling.tile_height, tiling.image_width,
                tiling.image_height, transforms)


def reductions(grid: Grid) -> list[int]:
    """1/1 to 1/8 of each side, where a tile divides evenly (phones' 512-px tiles do)."""
    return [r for r in (1, 2, 4, 8) if grid.tile_width % r == 0 and grid.tile_height % r == 0]


def upright_size(grid: Grid, reduction: int) -> tuple[int, int]:
    width, height = math.ceil(grid.width / reduction), math.ceil(grid.height / reduction)
    quarter_turns = sum(value // 90 for kind, value in grid.transforms if kind == "irot")
    return (height, width) if quarter_turns % 2 else (width, height)


def decode_grid(data: bytes, grid: Grid, reduction: int) -> np.ndarray:
    """Upright uint8 BGR at 1/reduction of each side; only one tile is ever decoded at full size."""
    out = np.empty((math.ceil(grid.height / reduction), math.ceil(grid.width / reduction), 3), np.uint8)
    tile_size = (grid.tile_width // reduction, grid.tile_height // reduction)
    with _Primary(data) as primary:
        lib = primary.lib
        options = lib.heif_decoding_options_alloc()
        ctypes.memset(options + 1, 1, 1)  # heif_decoding_options.ignore_transformations (after its version byte)
        try:
            for row in range(grid.rows):
                for column in range(grid.columns):
                    tile = _decode_tile(lib, primary.handle, options, column, row)
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


def _decode_tile(lib: ctypes.CDLL, handle: ctypes.c_void_p, options: int, column: int, row: int) -> np.ndarray:
    image = ctypes.c_void_p()
    _check(lib.heif_image_handle_decode_image_tile(handle, ctypes.byref(image), _COLORSPACE_RGB,
                                                   _CHROMA_INTERLEAVED_RGB, options, column, row))
    try:
        stride = ctypes.c_int()
        plane = lib.heif_image_get_plane_readonly(image, _CHANNEL_INTERLEAVED, ctypes.byref(stride))
        width = lib.heif_image_get_width(image, _CHANNEL_INTERLEAVED)
        height = lib.heif_image_get_height(image, _CHANNEL_INTERLEAVED)
        rows = np.ctypeslib.as_array(plane, shape=(height, stride.value))
        return rows[:, : width * 3].reshape(height, width, 3).copy()
    finally:
        lib.heif_image_release(image)


def _apply(image: np.ndarray, kind: str, value: int) -> np.ndarray:
    if kind == "irot":
        turns = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
        return cv2.rotate(image, turns[value]) if value else image
    return cv2.flip(image, 1 if value else 0)  # imir as libheif reads it: axis 1 mirrors left-right, 0 top-bottom


def _transforms(data: bytes) -> tuple[tuple[str, int], ...] | None:
    """The primary item's rotation and mirroring, in the order its properties list them (ISO/IEC 23008-12);
    None where it has a clean aperture (crop) or the boxes cannot be read."""
    try:
        meta = _child(data, 0, len(data), b"meta")
        if meta is None:
            return None
        body = (meta[0] + 4, meta[1])  # meta is a full box: version and flags first
        pitm, iprp = _child(data, *body, b"pitm"), _child(data, *body, b"iprp")
        if pitm is None or iprp is None:
            return None
        primary = (struct.unpack_from(">H", data, pitm[0] + 4)[0] if data[pitm[0]] == 0
                   else struct.unpack_from(">I", data, pitm[0] + 4)[0])
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


def _boxes(data: bytes, start: int, end: int):
    """(type, body start, body end) of each box between start and end."""
    while start + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, start)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, start + 8)[0], 16
        elif size == 0:
            size = end - start
        if size < header or start + size > end:
            raise IndexError("box overruns its parent")
        yield kind, start + header, start + size
        start += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    return next(((s, e) for k, s, e in _boxes(data, start, end) if k == kind), None)


def _associations(data: bytes, ipma: tuple[int, int], item: int) -> list[int]:
    """The 1-based property indices ipma associates with `item`."""
    version, flags = data[ipma[0]], int.from_bytes(data[ipma[0] + 1 : ipma[0] + 4], "big")
    pos = ipma[0] + 4
    (entries,) = struct.unpack_from(">I", data, pos)
    pos += 4
    for _ in range(entries):
        if version < 1:
            (item_id,), pos = struct.unpack_from(">H", data, pos), pos + 2
        else:
            (item_id,), pos = struct.unpack_from(">I", data, pos), pos + 4
        count, pos = data[pos], pos + 1
        indices = []
        for _ in range(count):
            if flags & 1:
                (value,), pos = struct.unpack_from(">H", data, pos), pos + 2
                indices.append(value & 0x7FFF)
            else:
                value, pos = data[pos], pos + 1
                indices.append(value & 0x7F)
        if item_id == item:
            return [i for i in indices if i]
    return []
