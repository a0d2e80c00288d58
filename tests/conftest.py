"""Shared fixtures: the real model, the real photos committed in tests/data, and the full datasets when present."""

from pathlib import Path

import pytest

from harness.images import crowd_mosaic, encode
from harness.paths import DATASETS, FIXTURES, scene_photos


def _require(path: Path) -> Path:
    if not path.is_dir():
        pytest.skip(f"dataset not found at {path} (set DATASETS_DIR to the folder holding scenes-dev and face-mask)")
    return path


@pytest.fixture(scope="session")
def scenes_dir() -> Path:
    return _require(DATASETS / "scenes-dev")


@pytest.fixture(scope="session")
def scenes_val_dir() -> Path:
    return _require(DATASETS / "scenes-val")


@pytest.fixture(scope="session")
def face_mask_dir() -> Path:
    return _require(DATASETS / "face-mask")


@pytest.fixture(scope="session")
def sample_scenes_dir() -> Path:
    """15 real photos with boxes, laid out like scenes-dev, committed so that a fresh clone tests itself."""
    return FIXTURES / "scenes"


@pytest.fixture(scope="session")
def sample_faces_dir() -> Path:
    """12 real face crops per class, laid out like face-mask."""
    return FIXTURES / "faces"


@pytest.fixture(scope="session")
def one_face_photo(sample_scenes_dir: Path) -> tuple[Path, list]:
    """A JPEG photo with one large face."""
    return next((p, t) for p, t in scene_photos(sample_scenes_dir, faces=1, min_face=100) if p.suffix == ".jpg")


@pytest.fixture(scope="session")
def group_photo(sample_scenes_dir: Path) -> tuple[Path, list]:
    """A photo with several faces of both classes."""
    return next(
        (p, t) for p, t in scene_photos(sample_scenes_dir, min_face=40)
        if len(t) >= 3 and {f.label for f in t} == {"with_mask", "without_mask"}
    )


@pytest.fixture(scope="session")
def crowd_photo(tmp_path_factory) -> Path:
    """A JPEG crowd of about 48 faces composed of the committed scene photos (tests.support.crowd_mosaic)."""
    path = tmp_path_factory.mktemp("crowd") / "crowd.jpg"
    path.write_bytes(encode(crowd_mosaic(), "JPEG", quality=90))
    return path


@pytest.fixture(scope="session")
def app():
    from app import app as default_app  # the very object gunicorn serves

    default_app.config.update(TESTING=True)
    return default_app


@pytest.fixture()
def client(app):
    return app.test_client()
