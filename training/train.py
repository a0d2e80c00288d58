"""Train the mask CNN and write the model, its LiteRT export, a model card and plots.

    python -m training.train --data ../shared/datasets/face-mask

Two stages, run one after the other by default. Fitting, the slow one, runs on any Keras backend, so it can run
on a GPU machine without TensorFlow or the images (`--stage fit --data` a cached arrays file, `KERAS_BACKEND=jax`).
Measuring runs the model through the serving code, so it needs TensorFlow (`--stage measure`, same `--out`).
"""

import argparse
import datetime
import json
import logging
import math
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from model.classifier import CARD_PATH, KERAS_PATH, TFLITE_PATH, KerasClassifier
from model.detector import FaceDetector, load_detector
from model.labels import CLASS_NAMES
from model.network import build_model
from model.pipeline import MaskPipeline
from model.preprocess import INPUT_SHAPE
from training.augment import AUGMENTATIONS, darken
from training.dataset import (
    CROP_MODES,
    SPLIT_SEED,
    TEST_FRACTION,
    VAL_FRACTION,
    FaceDataset,
    load_dataset,
    stratified_split,
)
from training.evaluate import evaluate_scenes
from training.export import export_tflite
from training.metrics import classification_report, plot_confusion, plot_history

log = logging.getLogger("training")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None) -> None:
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def fit(dataset: FaceDataset, train_idx: np.ndarray, val_idx: np.ndarray, args: argparse.Namespace) -> tuple[keras.Model, dict]:
    """The network behind an augmentation front that acts only in training (keras.io's way, so the whole step runs
    compiled on any backend), with the weights of the epoch of lowest validation loss."""
    network = build_model()
    network.summary()
    trainer = keras.Sequential([keras.Input(INPUT_SHAPE), *AUGMENTATIONS[args.augment](), network], name="trainer")
    steps = args.epochs * math.ceil(len(train_idx) / args.batch_size)
    rate = keras.optimizers.schedules.CosineDecay(args.learning_rate, steps)
    trainer.compile(optimizer=keras.optimizers.Adam(rate), loss="categorical_crossentropy", metrics=["accuracy"])
    best, timer = args.cache_dir / "best.weights.h5", EpochTimer()
    history = trainer.fit(
        dataset.x[train_idx],
        one_hot(dataset.y[train_idx]),
        batch_size=args.batch_size,
        epochs=args.epochs,
        validation_data=(dataset.x[val_idx], one_hot(dataset.y[val_idx])),
        callbacks=[keras.callbacks.ModelCheckpoint(best, monitor="val_loss", save_best_only=True, save_weights_only=True), timer],
    ).history
    trainer.load_weights(best)
    return network, {
        "backend": keras.backend.backend(),
        "init_seed": args.init_seed,
        "epochs_run": len(history["loss"]),
        "best_epoch": int(np.argmin(history["val_loss"])) + 1,
        "batch_size": args.batch_size,
        "learning_rate": f"Adam, {args.learning_rate:g} cosine-decayed to 0 over {args.epochs} epochs",
        "seconds_per_epoch_median": round(float(np.median(timer.seconds)), 1),
        "history": {k: [round(float(v), 4) for v in vs] for k, vs in history.items()},
    }


def one_hot(labels: np.ndarray) -> np.ndarray:
    return keras.utils.to_categorical(labels, len(CLASS_NAMES))


def measure(model: keras.Model, dataset: FaceDataset, test_idx: np.ndarray, detector: FaceDetector, scenes_dir: Path) -> dict:
    """The card's metrics, from the serving code path: test split, the test split darkened, and real photos."""
    classifier = KerasClassifier(model)
    x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]
    test = classification_report(y_test, classifier.predict(x_test).argmax(axis=1))
    log.info("test accuracy %.4f", test["accuracy"])
    recall_by_exposure = {}  # webcam frames in a dim room: the same test faces with every pixel scaled down
    for exposure in (0.5, 0.25, 0.15, 0.05):
        dark = ops.convert_to_numpy(darken(x_test, exposure))
        report = classification_report(y_test, classifier.predict(dark).argmax(axis=1))
        recall_by_exposure[f"{exposure:g}"] = {name: round(c["recall"], 4) for name, c in report["per_class"].items()}
    scenes = None
    if scenes_dir.is_dir():
        scenes = evaluate_scenes(MaskPipeline(detector, classifier), scenes_dir)
        log.info("scenes: %s", json.dumps({k: v for k, v in scenes.items() if k != "per_class"}))
    return {"test": test, "test_recall_by_exposure": recall_by_exposure, "scenes_dev": scenes}


def new_card(
    args: argparse.Namespace,
    dataset: FaceDataset,
    detector: FaceDetector,
    network: keras.Model,
    split: tuple[np.ndarray, np.ndarray, np.ndarray],
    training: dict,
) -> dict:
    """The model card as fitting leaves it: what was trained on what, and how; `measure` fills in the metrics."""
    train, validation, test = split
    return {
        "name": "mask_cnn",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "classes": list(CLASS_NAMES),
        "architecture": "Conv2D 200 3x3 relu > MaxPool 2x2 > Conv2D 100 3x3 relu > MaxPool 2x2 > Flatten > "
                        "Dense 50 relu > Dense 2 softmax; Adam, categorical cross-entropy",
        "parameters": network.count_params(),
        "preprocessing": "BGR > grayscale (cv2.cvtColor) > cv2.resize 100x100 > float32 / 255, shape (100, 100, 1)",
        "training_data": {
            "path": str(args.data),
            "fingerprint_sha256": dataset.fingerprint,
            "images": int(len(dataset.y)),
            "skipped": dataset.skipped,
            "crop": args.crop,
            "detector": detector.name if args.crop == "detector" else None,
            "augmentation": args.augment,
        },
        "split": {"seed": args.seed, "train": len(train), "validation": len(validation), "test": len(test)},
        "training": training,
        "metrics": None,
    }


def write_card(path: Path, card: dict) -> None:
    path.write_text(json.dumps(card, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/face-mask"),
                        help="class folders, or an arrays file from --cache-dir (for a machine without the images)")
    parser.add_argument("--stage", choices=("all", "fit", "measure"), default="all",
                        help="fit: train and write the model and the card's training record (any Keras backend); "
                             "measure: measure the model in --out, export it and complete its card (TensorFlow)")
    parser.add_argument("--crop", choices=CROP_MODES, default="detector",
                        help="detector: train on the face the detector finds (whole image if none); whole: the whole image")
    parser.add_argument("--epochs", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION)
    parser.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    parser.add_argument("--seed", type=int, default=SPLIT_SEED, help="seed of the split, and of training unless --init-seed")
    parser.add_argument("--init-seed", type=int, help="seed of the initial weights, augmentation and shuffling alone")
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="pose-light-dim")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's initial rate, cosine-decayed to 0")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=KERAS_PATH.parent, help="folder for the model files and card")
    parser.add_argument("--plots", type=Path, default=Path("docs/training"))
    parser.add_argument("--scenes", type=Path, default=Path("../shared/datasets/scenes-dev"),
                        help="real photos with boxes to measure the trained model on (skipped if absent)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.init_seed is None:
        args.init_seed = args.seed
    keras.utils.set_random_seed(args.init_seed)

    detector = load_detector()
    dataset = load_dataset(args.data, detector if args.crop == "detector" else None, args.cache_dir)
    train_idx, val_idx, test_idx = stratified_split(dataset.y, args.val_fraction, args.test_fraction, args.seed)
    log.info("%d images (%d skipped): train %d, validation %d, test %d",
             len(dataset.y), len(dataset.skipped), len(train_idx), len(val_idx), len(test_idx))

    args.out.mkdir(parents=True, exist_ok=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    model_path, card_path = args.out / KERAS_PATH.name, args.out / CARD_PATH.name
    if args.stage in ("all", "fit"):
        network, training = fit(dataset, train_idx, val_idx, args)
        network.save(model_path)  # no optimizer state: 11 MB instead of 34 MB, still compiled with Adam
        card = new_card(args, dataset, detector, network, (train_idx, val_idx, test_idx), training)
        write_card(card_path, card)
        log.info("wrote %s and %s", model_path, card_path)
    if args.stage in ("all", "measure"):
        card = json.loads(card_path.read_text())
        if card["training_data"]["fingerprint_sha256"] != dataset.fingerprint:
            raise SystemExit(f"{model_path} was trained on other data than {args.data}")
        model = keras.models.load_model(model_path, compile=False)  # the file as it will ship
        card["metrics"] = measure(model, dataset, test_idx, detector, args.scenes)
        export_tflite(model, args.out / TFLITE_PATH.name)
        args.plots.mkdir(parents=True, exist_ok=True)
        plot_history(card["training"]["history"], args.plots / "curves.png")
        plot_confusion(card["metrics"]["test"]["confusion_matrix"], args.plots / "confusion_matrix.png", "held-out test split")
        write_card(card_path, card)
        log.info("wrote %s, %s and %s", model_path, args.out / TFLITE_PATH.name, card_path)


if __name__ == "__main__":
    main()
