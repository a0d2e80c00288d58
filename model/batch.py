"""Annotate a batch of photos from the command line: writes annotated copies and prints one JSON line each.

    python -m model.batch photos/ more.jpg --out annotated/
"""

import argparse
import json
import logging
import sys
from pathlib import Path

import cv2

from model.annotate import annotate
from model.image_io import IMAGE_SUFFIXES, ImageError, decode_image
from model.pipeline import load_pipeline
from web.results import face_json


def image_paths(inputs: list[Path]) -> list[Path]:
    paths = []
    for item in inputs:
        if item.is_dir():
            paths += sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            paths.append(item)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the annotated copies")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    pipeline = load_pipeline()
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for path in image_paths(args.inputs):
        try:
            image = decode_image(path.read_bytes())
        except (ImageError, OSError) as exc:
            print(json.dumps({"image": str(path), "error": str(exc)}))
            failures += 1
            continue
        faces = pipeline.analyze(image).faces
        out_path = args.out / f"{path.stem}-annotated.jpg"
        cv2.imwrite(str(out_path), annotate(image, faces))
        print(json.dumps({
            "image": str(path),
            "annotated": str(out_path),
            "width": image.shape[1],
            "height": image.shape[0],
            "faces": [face_json(f) for f in faces],
        }))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
