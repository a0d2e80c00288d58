"""Run by `bench.detector --baseline` inside a build's exported tree (as `python -c`, the tree the current
directory): that build's served detector on the same photos and timed images, answered as JSON on stdout. It uses
only what every build since the ONNX Runtime detector has: `model.detector.load_detector()`,
`detect(image, video_frame=...)` and `bench.common.median_ms`."""

import json
import sys

import numpy as np

from bench.common import median_ms
from model.detector import load_detector


def main() -> None:
    request = json.loads(sys.stdin.read())
    detector = load_detector()
    photos = [np.load(path) for path in request["photos"]]
    boxes = [[list(d.box) for d in detector.detect(image)] for image in photos]
    times = {}
    for name, path in request["timed"].items() if request["repeats"] else ():
        image = np.load(path)
        times[name] = median_ms(lambda i=image, f=name == "frame": detector.detect(i, video_frame=f),
                                repeats=request["repeats"], warmup=3)
    json.dump({"boxes": boxes, "times": times}, sys.stdout)


if __name__ == "__main__":
    main()
