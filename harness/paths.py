"""Where the real photos and datasets are, for tests and benchmarks."""

import os
from pathlib import Path

from training.scenes import read_voc

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data"  # real photos and faces small enough to commit (sources: tests/data/README.md)
DATASETS = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets"))


def scene_photos(scenes: Path, faces: int | None = None, min_face: int = 0) -> list[tuple[Path, list]]:
    """(image path, ground-truth faces) for photos in the layout of scenes-dev, optionally with exactly
    `faces` faces."""
    chosen = []
    for xml_path in sorted((scenes / "annotations").glob("*.xml")):
        truths = read_voc(xml_path)
        if (faces is None or len(truths) == faces) and all(min(t.box[2:]) >= min_face for t in truths):
            chosen.append((next((scenes / "images").glob(xml_path.stem + ".*")), truths))
    return chosen
