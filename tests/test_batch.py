"""The batch command line tool annotates real photos into a tree that mirrors the inputs, with a report."""

import json
import shutil
import subprocess
import sys

import cv2

from harness.paths import ROOT


def run_batch(*args: str):
    return subprocess.run([sys.executable, "-m", "batch", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_batch_tool_mirrors_the_tree_and_reports(group_photo, one_face_photo, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    shutil.copy(group_photo[0], photos / f"a{group_photo[0].suffix}")
    shutil.copy(one_face_photo[0], photos / "sub" / "a.jpg")  # the same name one folder down: no overwrite
    (photos / "broken.jpg").write_bytes(b"nope")
    out = tmp_path / "out"
    result = run_batch(str(photos), "--out", str(out))
    assert result.returncode == 1  # one image failed
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {line["image"] for line in lines} == {str(p) for p in photos.rglob("*.*")}
    by_name = {line["image"]: line for line in lines}
    group, single = by_name[str(photos / f"a{group_photo[0].suffix}")], by_name[str(photos / "sub" / "a.jpg")]
    assert group["annotated"] == str(out / "a-annotated.jpg") and len(group["faces"]) >= 3
    assert single["annotated"] == str(out / "sub" / "a-annotated.jpg") and len(single["faces"]) == 1
    assert "error" in by_name[str(photos / "broken.jpg")]
    assert cv2.imread(single["annotated"]).shape[:2] == (single["height"], single["width"])
    assert [json.loads(line) for line in (out / "report.jsonl").read_text().splitlines()] == lines
    faces = len(group["faces"]) + 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"3 photos: 2 annotated ({faces} faces, ")
    assert "1 failed" in result.stderr and "XNNPACK" not in result.stderr


def test_colliding_outputs_stop_before_any_work_and_help_lists_exit_codes(one_face_photo, tmp_path):
    for folder in ("x", "y"):
        (tmp_path / folder).mkdir()
        shutil.copy(one_face_photo[0], tmp_path / folder / "a.jpg")
    out = tmp_path / "out"
    result = run_batch(str(tmp_path / "x" / "a.jpg"), str(tmp_path / "y" / "a.jpg"), "--out", str(out))
    assert result.returncode == 2 and "would both be written to" in result.stderr and not out.exists()
    help_text = run_batch("--help").stdout
    assert "exit codes:" in help_text and "  1  " in help_text and "  2  " in help_text
