"""The training side on real images: loading, caching, splitting, and the train / evaluate commands."""

import json
import shutil
import subprocess
import sys
import time

import cv2
import keras
import numpy as np
import pytest

from harness.images import encode
from harness.paths import ROOT
from model.detector import load_detector
from model.labels import CLASS_NAMES, decide
from training.augment import DARKEST_GAIN, Underexpose, augmentation
from training.dataset import FaceDataset, load_dataset, load_scene_faces, stratified_split
from training.recipe import load_recipe
from training.scenes import read_voc
from training.train import bf16_flags, choose_threshold, sample_weights

NO_SCENES = ["--scenes-train", "none", "--choose-on", "none"]
SHORT = ["--set", "warmup_epochs=0"]  # runs of a few epochs, too short for the recipe's warm-up


@pytest.fixture(scope="module")
def small_dataset(sample_faces_dir, tmp_path_factory):
    """12 real face photos per class, plus an RGBA PNG, a grayscale JPEG and two unreadable files."""
    root = tmp_path_factory.mktemp("face-mask")
    for name in CLASS_NAMES:
        (root / name).mkdir()
        for path in sorted((sample_faces_dir / name).glob("*.jpg"))[:12]:
            shutil.copy(path, root / name / path.name)
    sample = cv2.imread(str(next((root / "with_mask").glob("*.jpg"))))
    (root / "with_mask" / "alpha.png").write_bytes(encode(sample, "PNG", "RGBA"))
    (root / "without_mask" / "gray.jpg").write_bytes(encode(sample, "JPEG", "L"))
    (root / "with_mask" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "without_mask" / "empty.png").write_bytes(b"")
    return root


@pytest.fixture(scope="module")
def small_scenes(sample_scenes_dir, tmp_path_factory):
    """Four real scene photos; one of their faces relabelled as a wrongly worn mask."""
    root = tmp_path_factory.mktemp("scenes")
    for sub in ("images", "annotations"):
        (root / sub).mkdir()
    for xml in sorted((sample_scenes_dir / "annotations").glob("*.xml"))[:4]:
        shutil.copy(xml, root / "annotations")
        shutil.copy(next((sample_scenes_dir / "images").glob(xml.stem + ".*")), root / "images")
    first = sorted((root / "annotations").glob("*.xml"))[0]
    text = first.read_text()
    label = next(name for name in CLASS_NAMES if f"<name>{name}</name>" in text)
    first.write_text(text.replace(f"<name>{label}</name>", "<name>with_incorrect_mask</name>", 1))
    return root


@pytest.fixture(scope="module")
def small_faces(small_dataset, tmp_path_factory):
    """The small dataset loaded once for the tests of the training batches."""
    return load_dataset(small_dataset, load_detector(), cache_dir=tmp_path_factory.mktemp("cache"))


def test_loader_skips_unreadable_files_and_handles_alpha_and_gray(small_dataset, tmp_path):
    dataset = load_dataset(small_dataset, load_detector(), cache_dir=tmp_path)
    assert sorted(dataset.skipped) == ["with_mask/broken.jpg", "without_mask/empty.png"]
    assert dataset.x.shape == (26, 100, 100, 1) and dataset.x.dtype == np.float32
    assert 0.0 <= dataset.x.min() and dataset.x.max() <= 1.0
    assert list(np.bincount(dataset.y)) == [13, 13]
    assert len(list(tmp_path.glob("faces8-photo-*.npz"))) == 1
    cached = load_dataset(small_dataset, load_detector(), cache_dir=tmp_path)
    assert np.array_equal(cached.x, dataset.x) and cached.fingerprint == dataset.fingerprint


def test_scene_faces_are_cropped_on_their_labelled_and_detected_boxes_without_wrongly_worn_masks(small_scenes,
                                                                                                  tmp_path):
    truths = [t for xml in sorted((small_scenes / "annotations").glob("*.xml")) for t in read_voc(xml)]
    two_class = [t for t in truths if t.label in CLASS_NAMES]
    served = load_scene_faces(small_scenes, load_detector(), cache_dir=tmp_path)
    labelled = load_scene_faces(small_scenes, None, cache_dir=tmp_path)
    assert len(labelled.y) == len(two_class) == len(truths) - 1
    assert served.counts["with_incorrect_mask_left_out"] == labelled.counts["with_incorrect_mask_left_out"] == 1
    assert served.counts["labelled_boxes"] == labelled.counts["labelled_boxes"] == len(two_class)
    # a found face's crops on the photo search's box and on the frame search's, one where both boxes agree
    assert len(two_class) < served.counts["detector_boxes"] <= 2 * len(two_class)
    assert labelled.counts["detector_boxes"] == 0
    assert len(served.y) == len(two_class) + served.counts["detector_boxes"]
    labelled_crops, served_crops = {x.tobytes() for x in labelled.x}, {x.tobytes() for x in served.x}
    assert labelled_crops < served_crops  # every labelled crop, and the detector's, which are not the annotators'
    assert all(np.bincount(served.y, minlength=2) >= np.bincount(labelled.y, minlength=2))
    assert len(list(tmp_path.glob("scenes9-*.npz"))) == 2
    assert load_scene_faces(small_scenes, load_detector(), cache_dir=tmp_path).counts == served.counts


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.array([0] * 100 + [1] * 60)
    train, val, test = stratified_split(labels, 0.15, 0.15, seed=7)
    assert len(set(train) | set(val) | set(test)) == 160 and not set(train) & set(test) and not set(val) & set(test)
    assert list(np.bincount(labels[test])) == [15, 9] and list(np.bincount(labels[val])) == [15, 9]
    again = stratified_split(labels, 0.15, 0.15, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip((train, val, test), again, strict=True))


def test_train_on_folders_and_scenes_then_evaluate(small_dataset, small_scenes, tmp_path):
    out = tmp_path / "model"
    subprocess.run(
        [sys.executable, "-m", "training.train", "--data", str(small_dataset), "--scenes-train", str(small_scenes),
         "--choose-on", str(small_scenes), *SHORT, "--set", "epochs=2", "--set", "batch_size=8", "--out", str(out),
         "--plots", str(tmp_path / "plots"), "--cache-dir", str(tmp_path / "cache"), "--scenes", str(small_scenes)],
        cwd=ROOT, check=True, capture_output=True, timeout=600,
    )
    card = json.loads((out / "mask_cnn.json").read_text())
    assert card["parameters"] == 2_827_252 and card["training"]["epochs_run"] == 2
    assert card["training"]["recipe"] == {**load_recipe().as_dict(), "epochs": 2, "warmup_epochs": 0, "batch_size": 8}
    assert card["training"]["init_weights"] is None
    assert card["training"]["precision"].startswith("mixed_bfloat16" if bf16_flags() else "fp32")
    assert set(card["training"]["clean_training_accuracy"]) == set(CLASS_NAMES)
    saved = keras.models.load_model(out / "mask_cnn.keras", compile=False)
    assert all(layer.dtype_policy.name == "float32" for layer in saved.layers)  # what ships is float32 throughout
    assert all(w.dtype == np.float32 for w in saved.get_weights())
    assert card["split"] == {"seed": 42, "train": 18, "validation": 4, "test": 4}
    sources = card["training_data"]["sources"]
    assert sources["face-mask"]["skipped"] == ["with_mask/broken.jpg", "without_mask/empty.png"]
    scenes = sources[small_scenes.name]  # each scenes folder under its own name
    assert scenes["with_incorrect_mask_left_out"] == 1 and scenes["faces"] > 0
    assert card["training"]["chosen_by"].startswith("balanced accuracy")
    assert set(card["training"]["class_weight"]) == set(CLASS_NAMES)
    assert len(card["training"]["history"]["choice_balanced_accuracy"]) == 2
    thresholds = [float(t) for t in card["decision"]["balanced_accuracy_by_threshold"]]
    assert card["decision"]["without_mask_threshold"] in thresholds
    assert set(card["metrics"]["test_recall_by_exposure"]) == {"0.5", "0.25", "0.15", "0.05"}
    assert set(card["metrics"]["scenes_dev"]) >= {"detect_recall", "crop_accuracy", "per_class", "by_size"}
    assert all((out / name).exists() for name in ("mask_cnn.keras", "mask_cnn.tflite", "mask_cnn.int8.tflite"))
    assert not (out / "checkpoints").exists()
    assert (tmp_path / "plots" / "curves.png").exists() and (tmp_path / "plots" / "confusion_matrix.png").exists()

    report = tmp_path / "scenes.json"
    printed = subprocess.run([sys.executable, "-m", "training.evaluate", "--scenes", str(small_scenes), "--model",
                              str(out / "mask_cnn.keras"), "--json", str(report)], cwd=ROOT, check=True,
                             capture_output=True, text=True, timeout=300)
    figures = json.loads(report.read_text())
    assert figures["with_incorrect_mask"]["faces"] == 1 and "| all | without_mask |" in printed.stdout
    assert set(figures["by_size"]) == {"<24", "24-47", ">=48"}
    faces = sum(f["faces"] for by_class in figures["by_size"].values() for f in by_class.values())
    assert faces == figures["per_class"]["with_mask"]["faces"] + figures["per_class"]["without_mask"]["faces"]
    for key in ("detect_recall", "crop_accuracy", "end_to_end_accuracy"):
        assert 0.0 <= figures[key] <= 1.0 and key in figures["per_class"]["with_mask"]

    folder = subprocess.run([sys.executable, "-m", "training.evaluate", "--folder", str(small_dataset),
                             "--model", str(out / "mask_cnn.tflite")], cwd=ROOT, check=True,
                            capture_output=True, text=True, timeout=300)
    result = json.loads(folder.stdout)
    assert sum(map(sum, result["confusion_matrix"])) == 26 and set(result["per_class"]) == set(CLASS_NAMES)


def test_an_interrupted_run_resumes_from_its_last_epoch(small_dataset, tmp_path):
    """Killed after its first epoch, the same command goes on from the second and keeps the first in its record."""
    out = tmp_path / "model"
    command = [sys.executable, "-m", "training.train", "--data", str(small_dataset), *NO_SCENES, *SHORT,
               "--set", "epochs=3", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--stage", "fit",
               "--scenes", str(tmp_path / "none")]
    record = out / "checkpoints" / "epochs.json"
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and first.poll() is None and not record.exists():
        time.sleep(0.2)
    first.kill()
    first.wait(30)
    assert record.exists(), "the first epoch never finished"
    done = len(json.loads(record.read_text())["epochs"])
    assert done < 3
    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    card = json.loads((out / "mask_cnn.json").read_text())
    assert card["training"]["epochs_run"] == 3
    assert f"Epoch {done + 1}/3" in resumed.stdout and "Epoch 1/3" not in resumed.stdout


def test_fit_from_the_cached_arrays_then_measure_with_the_images(small_dataset, tmp_path):
    """The GPU route: fit needs only the arrays file; measure checks that the images are the ones it was fit on."""
    out, cache = tmp_path / "model", tmp_path / "cache"
    load_dataset(small_dataset, load_detector(), cache_dir=cache)
    (arrays,) = cache.glob("faces8-*.npz")
    common = [*NO_SCENES, *SHORT, "--set", "epochs=1", "--out", str(out), "--plots", str(tmp_path / "plots"),
              "--cache-dir", str(cache), "--scenes", str(tmp_path / "none")]
    run = [sys.executable, "-m", "training.train"]
    subprocess.run([*run, "--stage", "fit", "--data", str(arrays), "--set", "init_seed=7", *common], cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    card = json.loads((out / "mask_cnn.json").read_text())
    assert card["metrics"] is None and card["training"]["epochs_run"] == 1 and not (out / "mask_cnn.tflite").exists()
    assert card["training"]["recipe"]["init_seed"] == 7 and card["split"]["seed"] == 42

    other = tmp_path / "other"
    shutil.copytree(small_dataset, other)
    (other / "with_mask" / "alpha.png").unlink()
    refused = subprocess.run([*run, "--stage", "measure", "--data", str(other), *common], cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert refused.returncode != 0 and "trained on other data" in refused.stderr

    subprocess.run([*run, "--stage", "measure", "--data", str(small_dataset), *common], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    card = json.loads((out / "mask_cnn.json").read_text())
    assert card["metrics"]["test"]["confusion_matrix"] and card["training"]["epochs_run"] == 1
    assert (out / "mask_cnn.tflite").exists() and (tmp_path / "plots" / "curves.png").exists()


def test_a_recipe_changes_only_the_keys_it_is_told_and_refuses_unknown_ones():
    recipe = load_recipe(overrides=["epochs=40", "augmentation.zoom=0.15"])
    shipped = load_recipe()
    assert recipe.epochs == 40 and recipe.augmentation.zoom == 0.15
    assert recipe.augmentation.rotation == shipped.augmentation.rotation and recipe.batch_size == shipped.batch_size
    with pytest.raises(ValueError, match="no key 'epoch'"):
        load_recipe(overrides=["epoch=40"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        load_recipe(overrides=["epochs"])
    with pytest.raises(ValueError, match="warmup_epochs is from 0 to fewer than epochs"):
        load_recipe(overrides=["epochs=2", "warmup_epochs=2"])


@pytest.mark.parametrize("face_mask_weight", [1.0, 2.0])
def test_sample_weights_balance_the_classes_and_weigh_the_portraits(small_faces, face_mask_weight):
    """The training faces as main builds them: face-mask's portraits first, then scene faces."""
    labels = np.concatenate([small_faces.y, small_faces.y[:10]])
    from_face_mask = np.arange(len(labels)) < len(small_faces.y)
    recipe = load_recipe(overrides=[f"face_mask_weight={face_mask_weight}"])
    weights, class_weight = sample_weights(labels, from_face_mask, recipe)
    assert weights.mean() == pytest.approx(1.0)
    assert [weights[labels == k].sum() for k in range(2)] == pytest.approx([len(labels) / 2] * 2)
    same_class = labels == labels[0]
    portrait, scene = weights[from_face_mask & same_class][0], weights[~from_face_mask & same_class][0]
    assert portrait / scene == pytest.approx(face_mask_weight) and set(class_weight) == {0, 1}
    unweighted, none = sample_weights(labels, from_face_mask, load_recipe(overrides=['class_weight="none"']))
    assert none is None and np.all(unweighted == 1.0)
    with pytest.raises(ValueError, match="face_mask_weight is above 0"):
        load_recipe(overrides=["face_mask_weight=0"])


def test_augmentation_keeps_the_network_input_shape_and_range(small_faces):
    """In training, augmentation changes faces but keeps them valid network input; otherwise it passes them."""
    trained = evaluated = small_faces.x
    for layer in augmentation(load_recipe().augmentation):
        trained, evaluated = layer(trained, training=True), layer(evaluated, training=False)
    trained = keras.ops.convert_to_numpy(trained)
    assert trained.shape == (26, 100, 100, 1) and trained.dtype == np.float32
    assert 0.0 <= trained.min() and trained.max() <= 1.0
    assert not np.array_equal(trained, small_faces.x)
    assert np.array_equal(keras.ops.convert_to_numpy(evaluated), small_faces.x)


def test_underexposure_darkens_half_the_faces_onto_the_8_bit_grid(small_faces):
    faces = np.repeat(small_faces.x, 20, axis=0)
    dark = keras.ops.convert_to_numpy(Underexpose(share=0.5, seed=1)(faces))
    gains = dark.sum(axis=(1, 2, 3)) / faces.sum(axis=(1, 2, 3))
    darkened = ~np.all(dark == faces, axis=(1, 2, 3))
    assert 0.4 < darkened.mean() < 0.6
    assert np.allclose(dark[darkened] * 255, np.round(dark[darkened] * 255), atol=1e-4)
    assert DARKEST_GAIN * 0.8 < gains.min() and gains.max() <= 1.0 + 1e-6
    assert np.mean(gains[darkened] < 0.15) > 0.3  # as dark as webcam frames in a dim room get


def test_underexposure_darkens_the_share_it_is_given(small_faces):
    faces = np.repeat(small_faces.x, 20, axis=0)
    dark = keras.ops.convert_to_numpy(Underexpose(share=0.2, seed=1)(faces))
    assert 0.13 < np.mean(~np.all(dark == faces, axis=(1, 2, 3))) < 0.27


def test_the_decision_threshold_moves_faces_to_without_mask_only():
    probabilities = np.array([[0.9, 0.1], [0.7, 0.3], [0.5, 0.5], [0.2, 0.8]])
    assert decide(probabilities).tolist() == [0, 0, 1, 1]
    assert decide(probabilities, 0.3).tolist() == [0, 1, 1, 1]
    assert decide(probabilities, 0.05).tolist() == [1, 1, 1, 1]


@pytest.mark.parametrize("hesitant_bare_faces, threshold", [(1, 0.5), (3, 0.45)])
def test_the_threshold_leaves_argmax_only_for_a_gain_over_the_margin(hesitant_bare_faces, threshold):
    """200 faces of each class read right at any threshold, and bare faces at p(without_mask) 0.45 that only a
    threshold under 0.5 reads right: one is a gain of 0.0025, under the margin; three, 0.0074, over it."""
    bare = 200 + hesitant_bare_faces
    probabilities = np.array([[0.9, 0.1]] * 200 + [[0.1, 0.9]] * 200 + [[0.55, 0.45]] * hesitant_bare_faces)
    labels = np.array([0] * 200 + [1] * bare)
    choose_on = FaceDataset(np.zeros((len(labels), 1)), labels, "", [])
    assert choose_threshold(probabilities, choose_on)["without_mask_threshold"] == threshold
