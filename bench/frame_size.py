"""The webcam path's working size: what the frame network finds in a frame searched smaller, and its cost.

    python -m bench.frame_size [--scenes ../shared/datasets/scenes-val] [--sides 640 480 400 320] [--repeats 200]

Each scene photo is first made a webcam frame: shrunk so that its longer side is 640 px (the size the API's
clients and the benchmarks send), its labelled boxes with it. Each frame is then searched as the server searches
a frame (`video_frame=True`, one scale) by a detector whose working size is each of `--sides`; recall is per class
and by the face's shorter side in the 640-px frame (found = IoU >= 0.4 with a labelled face). The time is the
median of a 640×480 one-face frame's detection in this process, the first side given being the baseline.
"""

import argparse
from pathlib import Path

import cv2

from bench.common import median_ms, one_face_jpeg_640x480, table_header
from bench.detector import CLASSES, header_cells, recall_cells
from harness.paths import DATASETS
from model.detector import FaceDetector, load_detector
from model.image_io import decode_image
from training.scenes import GroundTruth, read_voc, scene_files

FRAME_SIDE = 640


def as_frame(image, truths: list[GroundTruth]) -> tuple:
    """The photo shrunk to a 640-px webcam frame (never enlarged), and its boxes with it."""
    scale = min(1.0, FRAME_SIDE / max(image.shape[:2]))
    if scale == 1.0:
        return image, truths
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    frame = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return frame, [GroundTruth(tuple(round(v * scale) for v in t.box), t.label) for t in truths]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    parser.add_argument("--sides", type=int, nargs="+", default=[640, 480, 400, 320],
                        help="largest side the detector searches a frame at, one per configuration")
    parser.add_argument("--repeats", type=int, default=200, help="timed detections per configuration")
    args = parser.parse_args()

    frames, truths_per_frame = [], []
    for image_path, xml_path in scene_files(args.scenes):
        frame, truths = as_frame(decode_image(image_path.read_bytes()), read_voc(xml_path))
        frames.append(frame)
        truths_per_frame.append(truths)
    timed = decode_image(one_face_jpeg_640x480())
    print(f"{args.scenes.name} as {FRAME_SIDE}-px frames: {len(frames)} frames, {sum(map(len, truths_per_frame))} "
          f"faces; bands by the face's shorter side in the frame; times on this machine, {cv2.getNumThreads()} "
          "OpenCV threads")
    print(table_header(["frame searched at", *header_cells(), "640×480 frame", "ratio"]))
    baseline, served = None, load_detector()
    for side in args.sides:
        detector = FaceDetector(served.photo, served.fill, served.frame, max_side=side)  # frames: one pass
        boxes = [[d.box for d in detector.detect(frame, video_frame=True)] for frame in frames]
        ms = median_ms(lambda d=detector: d.detect(timed, video_frame=True), repeats=args.repeats)
        baseline = baseline or ms
        print(f"| {side} px | {' | '.join(recall_cells(truths_per_frame, boxes))} | {ms:.1f} ms | "
              f"{ms / baseline:.2f} |", flush=True)
    print(f"classes: {', '.join(f'{k} = {v}' for k, v in CLASSES.items())}")


if __name__ == "__main__":
    main()
