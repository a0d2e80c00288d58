"""Shared fixtures: the real model, the real photos committed in tests/data, and the full datasets when present."""

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from config import Settings
from harness.images import crowd_mosaic, encode
from harness.paths import DATASETS, FIXTURES, scene_photos
from harness.servers import run_gunicorn
from tests.support import STALE_METRICS


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
    """A JPEG crowd of about 48 faces composed of the committed scene photos (harness.images.crowd_mosaic)."""
    path = tmp_path_factory.mktemp("crowd") / "crowd.jpg"
    path.write_bytes(encode(crowd_mosaic(), "JPEG", quality=90))
    return path


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log_path: Path
    metrics_dir: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[Server]:
    """Real gunicorn as a platform runs it with WEB_CONCURRENCY=2, shared by the tests that need a server but not
    their own settings; its metrics folder holds a stale file from an 'earlier run'."""
    metrics_dir = tmp_path_factory.mktemp("metrics")
    (metrics_dir / STALE_METRICS).write_bytes(os.urandom(64))
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    with run_gunicorn(env, log_path) as (url, process):
        yield Server(url, process, log_path, metrics_dir)


@pytest.fixture(scope="session")
def app():
    """An app with the defaults gunicorn serves when nothing is set; tests that change a setting make their own
    with create_app(Settings(...))."""
    from app import create_app  # importing app also builds gunicorn's module-level instance, once

    made = create_app(Settings())
    made.config.update(TESTING=True)
    return made


@pytest.fixture()
def client(app):
    return app.test_client()
