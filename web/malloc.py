"""glibc's malloc settings that give decoded images back to the system (docs/deploy.md).

glibc keeps freed memory in one arena per thread and, once a large buffer is freed, serves buffers up to 32 MB from
those arenas instead of mmap: after a few large photos each of a worker's threads holds on to its own decode
buffers. Two arenas and a fixed mmap threshold return them when freed.
"""

import ctypes
import sys

M_ARENA_MAX, M_MMAP_THRESHOLD = -8, -3
MMAP_THRESHOLD = 1 << 20  # fixed, which also turns off glibc's dynamic raising of it


def return_freed_images() -> bool:
    """Set in the master before it forks, so every worker inherits it; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # musl: its allocator has neither setting
        return False
    return bool(libc.mallopt(M_ARENA_MAX, 2)) and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
