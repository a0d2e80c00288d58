"""Shared fixtures: the real model, real photos from ../shared/datasets, and images made from them."""

import io
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from training.evaluate import read_voc

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("DATASETS_DIR", ROOT.parent / "shared" / "datasets"))
SCENES = DATASETS / "scenes-dev"
SCENES_VAL = DATASETS / "scenes-val"
FACE_MASK = DATASETS / "face-mask"


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"dataset not found at {path} (set DATASETS_DIR to the folder holding scenes-dev and face-mask)")
    return path


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    return _require(SCENES)


@pytest.fixture(scope="session")
def scenes_val_dir() -> Path:
    return _require(SCENES_VAL)


@pytest.fixture(scope="session")
def face_mask_dir() -> Path:
    return _require(FACE_MASK)


def scene_photos(scenes: Path, faces: int | None = None, min_face: int = 0) -> list[tuple[Path, list]]:
    """(image path, ground-truth faces) for scenes-dev photos, optionally with exactly `faces` faces."""
    chosen = []
    for xml_path in sorted((scenes / "annotations").glob("*.xml")):
        truths = read_voc(xml_path)
        if (faces is None or len(truths) == faces) and all(min(t.box[2:]) >= min_face for t in truths):
            chosen.append((next((scenes / "images").glob(xml_path.stem + ".*")), truths))
    return chosen


@pytest.fixture(scope="session")
def one_face_photo(scenes_dir: Path) -> tuple[Path, list]:
    """A JPEG photo with one large face."""
    return next((p, t) for p, t in scene_photos(scenes_dir, faces=1, min_face=100) if p.suffix == ".jpg")


@pytest.fixture(scope="session")
def group_photo(scenes_dir: Path) -> tuple[Path, list]:
    """A photo with several faces of both classes."""
    return next(
        (p, t) for p, t in scene_photos(scenes_dir, min_face=40)
        if len(t) >= 3 and {f.label for f in t} == {"with_mask", "without_mask"}
    )


def encode(image_bgr: np.ndarray, fmt: str = "JPEG", mode: str | None = None, **save_args) -> bytes:
    """A real photo re-encoded with Pillow in a given format and mode (CMYK, L, RGBA, I;16…)."""
    image = Image.fromarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    if mode:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def app():
    from app import app as default_app  # the very object gunicorn serves

    default_app.config.update(TESTING=True)
    return default_app


@pytest.fixture()
def client(app):
    return app.test_client()
