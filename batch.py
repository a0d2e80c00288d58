"""Annotate a batch of photos from the command line: annotated copies whose paths mirror the inputs', one JSON
line each on stdout and in OUT/report.jsonl, and a one-line summary on stderr.

    python -m batch photos/ more.jpg --out annotated/

photos/sub/a.jpg becomes annotated/sub/a-annotated.jpg (a folder's files keep their place under it; a file given
by name goes to the top of OUT). Two inputs that would write the same file stop the run before any work.
"""

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2

from model.annotate import annotate
from model.image_io import IMAGE_SUFFIXES, ImageError, decode_image
from model.pipeline import MaskPipeline, load_pipeline
from web.results import face_json

EXIT_CODES = """exit codes:
  0  every photo was analysed
  1  at least one photo could not be read or decoded (its JSON line has "error"); the others were written
  2  bad arguments, or two inputs that would write the same output file (nothing was written)"""
REPORT_NAME = "report.jsonl"


def image_paths(inputs: list[Path]) -> list[tuple[Path, Path]]:
    """(photo, its path relative to OUT without the suffix): a folder's photos under their place in it."""
    pairs = []
    for item in inputs:
        if item.is_dir():
            pairs += [(p, p.relative_to(item).with_suffix(""))
                      for p in sorted(item.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        else:
            pairs.append((item, Path(item.stem)))
    return pairs


def output_paths(pairs: list[tuple[Path, Path]], out: Path) -> list[Path]:
    """Where each photo's annotated copy goes; raises ValueError naming two inputs that would share one."""
    seen: dict[Path, Path] = {}
    paths = []
    for photo, relative in pairs:
        target = out / relative.parent / f"{relative.name}-annotated.jpg"
        if target in seen:
            raise ValueError(f"{seen[target]} and {photo} would both be written to {target}; "
                             "rename one or run them separately")
        seen[target] = photo
        paths.append(target)
    return paths


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """LiteRT's C++ runtime prints "Created TensorFlow Lite XNNPACK delegate for CPU." to file descriptor 2."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _quiet_pipeline() -> MaskPipeline:
    with _quiet_stderr():
        return load_pipeline()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, epilog=EXIT_CODES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", type=Path, help="image files or folders")
    parser.add_argument("--out", type=Path, required=True, help="folder for the annotated copies and report.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    pairs = image_paths(args.inputs)
    try:
        targets = output_paths(pairs, args.out)
    except ValueError as exc:
        parser.error(str(exc))  # exit code 2
    pipeline = _quiet_pipeline()
    args.out.mkdir(parents=True, exist_ok=True)
    failures = faces_found = bare = 0
    with open(args.out / REPORT_NAME, "w") as report:
        for (path, _), out_path in zip(pairs, targets, strict=True):
            try:
                image = decode_image(path.read_bytes())
            except (ImageError, OSError) as exc:
                line = {"image": str(path), "error": str(exc)}
                failures += 1
            else:
                faces = pipeline.analyze(image).faces
                out_path.parent.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(out_path), annotate(image, faces))
                faces_found += len(faces)
                bare += sum(f.prediction.label == "without_mask" for f in faces)
                line = {"image": str(path), "annotated": str(out_path), "width": image.shape[1],
                        "height": image.shape[0], "faces": [face_json(f) for f in faces]}
            print(json.dumps(line), flush=True)
            report.write(json.dumps(line) + "\n")
    done = len(pairs) - failures
    print(f"{len(pairs)} photos: {done} annotated ({faces_found} faces, {bare} without a mask), {failures} failed; "
          f"report: {args.out / REPORT_NAME}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
