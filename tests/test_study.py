"""The recipe study: its rule on given scores, and a whole study on the arrays of the photos the repo carries."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.paths import ROOT
from model.detector import load_detector
from training.dataset import load_dataset, load_scene_faces
from training.study import REFERENCE, Run, decide

PLAN = {"seeds": [1, 2], "margin": 0.01, "reference": {"warmup_epochs": 2},
        "knobs": {"longer": {"epochs": 36}, "lighter": {"augmentation": {"zoom": 0.05}},
                  "slower": {"learning_rate": 0.0005}}}


def finished(config: str, scores: list[float | None]) -> list[Run]:
    return [Run(config, seed, {}, Path("study"), result=None if s is None else {"score": s})
            for seed, s in enumerate(scores, start=1)]


def test_a_knob_is_adopted_only_if_its_mean_beats_the_reference_by_the_margin_on_the_same_seeds():
    runs = [*finished(REFERENCE, [0.90, 0.92]), *finished("longer", [0.91, 0.93]),
            *finished("lighter", [0.95, None]), *finished("slower", [0.89, 0.90])]
    decision = decide(PLAN, runs)
    assert decision["knobs"]["longer"]["gain"] == pytest.approx(0.01) and decision["knobs"]["longer"]["adopted"]
    assert decision["knobs"]["lighter"]["seeds"] == [1] and decision["knobs"]["lighter"]["gain"] == pytest.approx(0.05)
    assert not decision["knobs"]["slower"]["adopted"]
    assert decision["adopted"] == ["longer", "lighter"]
    assert decision["final_keys"] == {"warmup_epochs": 2, "epochs": 36, "augmentation": {"zoom": 0.05}}


def test_without_finished_reference_seeds_no_knob_is_adopted():
    decision = decide(PLAN, [*finished(REFERENCE, [None, None]), *finished("longer", [0.99, 0.99])])
    assert decision["adopted"] == [] and decision["final_keys"] == PLAN["reference"]


def test_a_study_fits_scores_and_picks_then_reuses_finished_runs(sample_faces_dir, sample_scenes_dir, tmp_path):
    detector, cache = load_detector(), tmp_path / "cache"
    load_dataset(sample_faces_dir, detector, cache)
    load_scene_faces(sample_scenes_dir, detector, cache)
    load_scene_faces(sample_scenes_dir, None, cache)
    (faces,), (scenes,), (truth,) = (list(cache.glob(p)) for p in ("faces8-*", "scenes9-photo-*", "scenes9-truth-*"))
    plan = tmp_path / "plan.json"
    reference = {"epochs": 1, "warmup_epochs": 0, "batch_size": 8}
    plan.write_text(json.dumps({"seeds": [1], "margin": 0.01, "reference": reference,
                                "knobs": {"no class weights": {"class_weight": "none"}}}))
    out = tmp_path / "study"
    command = [sys.executable, "-m", "training.study", "--plan", str(plan), "--data", str(faces),
               "--scenes-train", str(scenes), "--choose-on", str(truth), "--out", str(out), "--parallel", "2",
               "--precision", "fp32", "--budget", "600"]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=600)
    summary = json.loads((out / "summary.json").read_text())
    assert {r["name"] for r in summary["runs"]} == {"reference-s1", "no_class_weights-s1"}
    assert all(0.0 <= r["result"]["score"] <= 1.0 and r["result"]["epochs_run"] == 1 for r in summary["runs"])
    assert summary["final_config"] in ("reference", "no class weights")
    assert summary["candidate"] == f"{summary['final_config'].replace(' ', '_')}-s1"
    assert (out / "models" / f"{summary['candidate']}.keras").exists()

    again = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    assert again.stderr.count("already run") == 2 and "start " not in again.stderr
    assert json.loads((out / "summary.json").read_text())["configs"] == summary["configs"]
