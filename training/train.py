"""Train the mask CNN from scratch by the recipe file and write the model, its LiteRT export, a card and plots.

    python -m training.train                      # training/recipe.json on ../shared/datasets, as committed
    python -m training.train --set epochs=40 --set augmentation.zoom=0.15 --out runs/X   # a study run

Faces come from the class folders (split into train / validation / held-out test) and from every labelled face
of the real scene photos of --scenes-train (scenes-train and scenes-extra; all used for training). With
--choose-on, the weights kept are those of the epoch with the best balanced accuracy on that folder's labelled
faces; otherwise, of the lowest validation loss.
Training is resumable: run the same command again after an interruption.

Two stages, run one after the other by default. Fitting, the slow one, runs on any Keras backend, so it can run
on a GPU machine without TensorFlow or the images (`--stage fit` with the cached arrays files for --data,
--scenes-train and --choose-on, `KERAS_BACKEND=jax`). Measuring runs the model through the serving code, so it
needs TensorFlow and the images (`--stage measure`, same `--out`).
"""

import argparse
import datetime
import json
import logging
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from model.classifier import CARD_PATH, INT8_PATH, KERAS_PATH
from model.detector import FaceDetector, load_detector
from model.labels import CLASS_NAMES, decide
from model.pipeline import MaskPipeline
from model.preprocess import INPUT_SHAPE
from training.augment import augmentation, darken
from training.dataset import (
    SPLIT_SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    FaceDataset,
    load_dataset,
    load_scene_faces,
    stratified_split,
)
from training.evaluate import evaluate_scenes
from training.export import export_all
from training.keras_classifier import KerasClassifier
from training.metrics import classification_report, plot_confusion, plot_history
from training.network import build_model
from training.recipe import RECIPE_PATH, Recipe, load_recipe

log = logging.getLogger("training")
DATASETS = Path("../shared/datasets")


THRESHOLDS = [round(t, 2) for t in np.arange(0.5, 0.04, -0.05)]  # of p(without_mask), from argmax's 0.5 down
THRESHOLD_MARGIN = 0.005  # balanced accuracy a threshold must gain over those nearer 0.5: 2-3 of scenes-val's faces


def per_class_accuracy(y_true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {name: float(np.mean(predicted[y_true == k] == k)) for k, name in enumerate(CLASS_NAMES)}


class EpochRecord(keras.callbacks.Callback):
    """Times each epoch, scores it on the faces runs are chosen by, keeps the best weights, and writes it all
    to a file after every epoch, so that a resumed run keeps its history and its best epoch."""

    def __init__(self, folder: Path, choose_on: FaceDataset | None) -> None:
        super().__init__()
        self.folder, self.choose_on = folder, choose_on
        self.best_weights, self.record_path = folder / "best.weights.h5", folder / "epochs.json"

    def on_train_begin(self, logs=None) -> None:
        resumed = (self.folder / "backup" / "training_metadata.json").exists() and self.record_path.exists()
        self.record = json.loads(self.record_path.read_text()) if resumed else {"epochs": [], "best": None}

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        entry = {"epoch": epoch + 1, "seconds": round(time.perf_counter() - self._start, 1)}
        entry |= {k: round(float(v), 4) for k, v in (logs or {}).items()}
        if self.choose_on is not None:
            probabilities = self.model.predict(self.choose_on.x, batch_size=256, verbose=0)
            accuracy = per_class_accuracy(self.choose_on.y, probabilities.argmax(axis=1))
            entry |= {f"choice_{name}": round(a, 4) for name, a in accuracy.items()}
            entry["choice_balanced_accuracy"] = round(float(np.mean(list(accuracy.values()))), 4)
            better = (self.record["best"] is None
                      or entry["choice_balanced_accuracy"] > self.record["best"]["choice_balanced_accuracy"])
        else:
            better = self.record["best"] is None or entry["val_loss"] < self.record["best"]["val_loss"]
        if better:
            self.model.save_weights(self.best_weights)
            self.record["best"] = entry
        self.record["epochs"].append(entry)
        self.record_path.write_text(json.dumps(self.record, indent=1))
        log.info("epoch %d: %s%s", epoch + 1, {k: v for k, v in entry.items() if k.startswith(("val_", "choice_"))},
                 " (best so far)" if better else "")


def bf16_flags() -> list[str]:
    """The CPU flags that give oneDNN bfloat16 kernels (Linux; elsewhere none are seen and training runs fp32)."""
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    return sorted(words & {"avx512_bf16", "amx_bf16"})


def precision_policy(choice: str) -> tuple[str, str]:
    """The Keras dtype policy to train in, and why."""
    flags = bf16_flags()
    if choice == "fp32" or (choice == "auto" and not flags):
        return "float32", "fp32" + ("" if choice == "fp32" else " (the CPU has no bf16 instructions)")
    return "mixed_bfloat16", "mixed_bfloat16" + (" (asked for)" if choice == "bf16" else f" (CPU: {', '.join(flags)})")


def device_name() -> str:
    """What fits the network: the accelerator where the backend has one, else the CPU's model name."""
    if keras.backend.backend() == "jax":
        import jax

        if (device := jax.devices()[0]).platform != "cpu":
            return device.device_kind
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "unknown")


def fit(train: FaceDataset, from_face_mask: np.ndarray, validation: FaceDataset, choose_on: FaceDataset | None,
        recipe: Recipe, args: argparse.Namespace) -> tuple[keras.Model, dict]:
    """The network behind an augmentation front that acts only in training (keras.io's way, so the whole step runs
    compiled on any backend), with the weights of the chosen epoch, returned as a float32 network."""
    policy, precision = precision_policy(args.precision)
    keras.config.set_dtype_policy(policy)
    network = build_model()
    network.summary()
    trainer = keras.Sequential([keras.Input(INPUT_SHAPE), *augmentation(recipe.augmentation), network], name="trainer")
    steps_per_epoch = math.ceil(len(train.y) / recipe.batch_size)
    warmup = recipe.warmup_epochs * steps_per_epoch
    rate = keras.optimizers.schedules.CosineDecay(0.0, recipe.epochs * steps_per_epoch - warmup,
                                                  warmup_target=recipe.learning_rate, warmup_steps=warmup)
    trainer.compile(optimizer=keras.optimizers.Adam(rate), loss="categorical_crossentropy", metrics=["accuracy"])
    weights, class_weight = sample_weights(train.y, from_face_mask, recipe)
    folder = args.out / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    record = EpochRecord(folder, choose_on)
    trainer.fit(
        train.x, one_hot(train.y),
        batch_size=recipe.batch_size,
        epochs=recipe.epochs,
        validation_data=(validation.x, one_hot(validation.y)),
        sample_weight=weights,
        callbacks=[keras.callbacks.BackupAndRestore(folder / "backup"), record],
    )
    trainer.load_weights(record.best_weights)
    keras.config.set_dtype_policy("float32")  # what ships: float32 weights and compute, exactly the layers specified
    served = build_model()
    served.set_weights(network.get_weights())
    epochs = record.record["epochs"]
    history = {k: [e[k] for e in epochs] for k in epochs[-1] if k not in ("epoch", "seconds")}
    return served, {
        "backend": keras.backend.backend(),
        "device": device_name(),
        "precision": precision,
        "recipe": recipe.as_dict(),
        "init_weights": None,
        "epochs_run": len(epochs),
        "best_epoch": record.record["best"]["epoch"],
        "chosen_by": (f"balanced accuracy on the labelled faces of {args.choose_on}" if choose_on is not None
                      else "validation loss"),
        "class_weight": {CLASS_NAMES[k]: round(w, 3) for k, w in class_weight.items()} if class_weight else None,
        "learning_rate": (f"Adam, {recipe.learning_rate:g}"
                          + (f" after {recipe.warmup_epochs} epochs of linear warm-up," if recipe.warmup_epochs else "")
                          + f" cosine-decayed to 0 by epoch {recipe.epochs}"),
        "seconds_per_epoch_median": round(float(np.median([e["seconds"] for e in epochs])), 1),
        "seconds_fitting": round(sum(e["seconds"] for e in epochs)),
        "clean_training_accuracy": training_fit(served, train),
        "history": history,
    }


def sample_weights(labels: np.ndarray, from_face_mask: np.ndarray,
                   recipe: Recipe) -> tuple[np.ndarray, dict[int, float] | None]:
    """Each training face's weight in the loss, and the class factors in it: face-mask's portraits count
    `face_mask_weight` times a scene face, then "balanced" gives each class the same total. The mean is 1, so
    Adam's rate means the same whatever the weights."""
    weights = np.where(from_face_mask, recipe.face_mask_weight, 1.0)
    class_weight = None
    if recipe.class_weight == "balanced":
        totals = np.bincount(labels, weights, minlength=len(CLASS_NAMES))
        factors = weights.sum() / (len(CLASS_NAMES) * totals)
        weights = weights * factors[labels]
        class_weight = dict(enumerate(factors.tolist()))
    return weights / weights.mean(), class_weight


def training_fit(network: keras.Model, train: FaceDataset) -> dict[str, float]:
    """Accuracy on the training faces themselves, unaugmented, at argmax: how far the network underfits."""
    predicted = network.predict(train.x, batch_size=256, verbose=0).argmax(axis=1)
    return {name: round(a, 4) for name, a in per_class_accuracy(train.y, predicted).items()}


def one_hot(labels: np.ndarray) -> np.ndarray:
    return keras.utils.to_categorical(labels, len(CLASS_NAMES))


def subset(dataset: FaceDataset, idx: np.ndarray) -> FaceDataset:
    return FaceDataset(dataset.x[idx], dataset.y[idx], dataset.fingerprint, [])


def concatenate(*parts: FaceDataset) -> FaceDataset:
    return FaceDataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), "", [])


def choose_threshold(probabilities: np.ndarray, choose_on: FaceDataset) -> dict:
    """The decision threshold nearest 0.5 (plain argmax) whose balanced accuracy on the faces runs are chosen by is
    within THRESHOLD_MARGIN of the best (`probabilities` are the model's for `choose_on.x`): a gain of a face or
    two on a few hundred is noise, not a reason to move every face's verdict towards one class."""
    scores = {t: float(np.mean(list(per_class_accuracy(choose_on.y, decide(probabilities, t)).values())))
              for t in THRESHOLDS}
    best = next(t for t in THRESHOLDS if scores[t] >= max(scores.values()) - THRESHOLD_MARGIN)
    return {"without_mask_threshold": best,
            "balanced_accuracy_by_threshold": {f"{t:g}": round(s, 4) for t, s in scores.items()}}


def measure(model: keras.Model, test: FaceDataset, detector: FaceDetector, scenes: dict[str, Path],
            threshold: float) -> dict:
    """The card's metrics, from the serving code path: test split, the test split darkened, and real photos."""
    classifier = KerasClassifier(model)
    report = classification_report(test.y, decide(classifier.predict(test.x), threshold))
    log.info("test accuracy %.4f", report["accuracy"])
    recall_by_exposure = {}  # webcam frames in a dim room: the same test faces with every pixel scaled down
    for exposure in (0.5, 0.25, 0.15, 0.05):
        dark = ops.convert_to_numpy(darken(test.x, exposure))
        by_class = classification_report(test.y, decide(classifier.predict(dark), threshold))["per_class"]
        recall_by_exposure[f"{exposure:g}"] = {name: round(c["recall"], 4) for name, c in by_class.items()}
    metrics = {"test": report, "test_recall_by_exposure": recall_by_exposure}
    for name, folder in scenes.items():
        if folder and folder.is_dir():
            metrics[name] = evaluate_scenes(MaskPipeline(detector, classifier, threshold), folder)
            log.info("%s: %s", name, json.dumps({k: v for k, v in metrics[name].items() if not isinstance(v, dict)}))
    return metrics


def source_record(path: Path, dataset: FaceDataset) -> dict:
    counts = dataset.counts or {name: int(np.sum(dataset.y == k)) for k, name in enumerate(CLASS_NAMES)}
    return {"path": str(path), "fingerprint_sha256": dataset.fingerprint, "faces": int(len(dataset.y)), **counts,
            "skipped": dataset.skipped}


def new_card(sources: dict[str, dict], detector: FaceDetector, network: keras.Model, split: dict,
             training: dict) -> dict:
    """The model card as fitting leaves it: what was trained on what, and how; `measure` fills in the metrics."""
    return {
        "name": "mask_cnn",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "classes": list(CLASS_NAMES),
        "architecture": "Conv2D 200 3x3 relu > MaxPool 2x2 > Conv2D 100 3x3 relu > MaxPool 2x2 > Flatten > "
                        "Dense 50 relu > Dense 2 softmax; Adam, categorical cross-entropy",
        "parameters": network.count_params(),
        "preprocessing": "BGR > grayscale (cv2.cvtColor) > cv2.resize 100x100 > float32 / 255, shape (100, 100, 1)",
        "training_data": {"detector": detector.fingerprint, "sources": sources},
        "split": split,
        "training": training,
        "metrics": None,
    }


def write_card(path: Path, card: dict) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=RECIPE_PATH, help="the recipe file (default: what ships)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one recipe key for this run, e.g. epochs=40 or augmentation.zoom=0.15 "
                             "(JSON values)")
    parser.add_argument("--data", type=Path, default=DATASETS / "face-mask",
                        help="class folders, or an arrays file from --cache-dir (for a machine without the images)")
    parser.add_argument("--scenes-train", type=Path, nargs="+",
                        default=[DATASETS / "scenes-train", DATASETS / "scenes-extra"],
                        help="folders of scene photos with labelled boxes to train on too (or arrays); 'none' for none")
    parser.add_argument("--choose-on", type=Path, default=DATASETS / "scenes-val",
                        help="scene photos with labelled boxes (or arrays) whose balanced accuracy chooses the epoch "
                             "and threshold; 'none' for the lowest validation loss and argmax")
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-dev",
                        help="real photos with boxes to measure the trained model on (skipped if absent)")
    parser.add_argument("--stage", choices=("all", "fit", "measure"), default="all",
                        help="fit: train and write the model and the card's training record (any Keras backend); "
                             "measure: measure the model in --out, export it and complete its card (TensorFlow)")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="auto: mixed bfloat16 where the CPU has bf16 instructions, float32 elsewhere")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=KERAS_PATH.parent, help="folder for the model files and card")
    parser.add_argument("--plots", type=Path, default=Path("docs/training"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    recipe = load_recipe(args.recipe, args.set)
    keras.utils.set_random_seed(recipe.init_seed)
    args.scenes_train = [p for p in args.scenes_train if p != Path("none")]
    args.choose_on = None if args.choose_on == Path("none") else args.choose_on

    detector = load_detector()
    faces = load_dataset(args.data, detector, args.cache_dir)
    train_idx, val_idx, test_idx = stratified_split(faces.y, VAL_FRACTION, TEST_FRACTION, SPLIT_SEED)
    sources = {"face-mask": source_record(args.data, faces)}
    train = subset(faces, train_idx)
    for folder in args.scenes_train:
        scenes = load_scene_faces(folder, detector, args.cache_dir)
        sources[folder.stem] = source_record(folder, scenes)
        train = concatenate(train, scenes)
    from_face_mask = np.arange(len(train.y)) < len(train_idx)  # face-mask's faces come first
    choose_on = load_scene_faces(args.choose_on, None, args.cache_dir) if args.choose_on else None
    if choose_on is not None:
        sources["choose-on"] = source_record(args.choose_on, choose_on)
    log.info("sources: %s; training on %d faces (%s)", json.dumps(sources), len(train.y),
             dict(zip(CLASS_NAMES, np.bincount(train.y).tolist(), strict=True)))

    args.out.mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    model_path, card_path = args.out / KERAS_PATH.name, args.out / CARD_PATH.name
    if args.stage in ("all", "fit"):
        network, training = fit(train, from_face_mask, subset(faces, val_idx), choose_on, recipe, args)
        network.save(model_path)  # without optimizer state (Adam's moments would triple the file), still compiled
        split = {"seed": SPLIT_SEED, "train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)}
        write_card(card_path, new_card(sources, detector, network, split, training))
        shutil.rmtree(args.out / "checkpoints")  # finished: nothing left to resume
        log.info("wrote %s and %s", model_path, card_path)
    if args.stage in ("all", "measure"):
        card = json.loads(card_path.read_text())
        if card["training_data"]["sources"]["face-mask"]["fingerprint_sha256"] != faces.fingerprint:
            raise SystemExit(f"{model_path} was trained on other data than {args.data}")
        model = keras.models.load_model(model_path, compile=False)  # the file as it will ship
        if choose_on is not None:
            card["decision"] = {**choose_threshold(KerasClassifier(model).predict(choose_on.x), choose_on),
                                "chosen_by": f"balanced accuracy on the labelled faces of {args.choose_on}"}
        threshold = card.get("decision", {}).get("without_mask_threshold", 0.5)
        card["metrics"] = measure(model, subset(faces, test_idx), detector,
                                  {"scenes_val": args.choose_on, "scenes_dev": args.scenes}, threshold)
        card["exports"] = export_all(model, args.out, train.x)
        args.plots.mkdir(parents=True, exist_ok=True)
        plot_history(card["training"]["history"], args.plots / "curves.png")
        plot_confusion(card["metrics"]["test"]["confusion_matrix"], args.plots / "confusion_matrix.png",
                       "held-out test split")
        write_card(card_path, card)
        log.info("wrote %s, its exports (served: %s) and %s", model_path, args.out / INT8_PATH.name, card_path)


if __name__ == "__main__":
    main()
