"""The batch command line tool annotates real photos and prints one JSON line each."""

import json
import subprocess
import sys

import cv2

from tests.support import ROOT


def test_batch_tool_writes_annotated_copies_and_json(group_photo, one_face_photo, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"nope")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "model.batch", str(group_photo[0]), str(one_face_photo[0]), str(broken), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1  # one image failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(group_photo[0]), str(one_face_photo[0]), str(broken)]
    assert len(lines[0]["faces"]) >= 3 and len(lines[1]["faces"]) == 1
    assert "error" in lines[2]
    annotated = cv2.imread(lines[1]["annotated"])
    assert annotated.shape[:2] == (lines[1]["height"], lines[1]["width"])
