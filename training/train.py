"""Train the mask CNN and write the model, its LiteRT export, a model card and plots.

    python -m training.train --data ../shared/datasets/face-mask
"""

import argparse
import datetime
import json
import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from model.classifier import CARD_PATH, KERAS_PATH, TFLITE_PATH, KerasClassifier
from model.detector import load_detector
from model.labels import CLASS_NAMES
from model.network import build_model
from model.pipeline import MaskPipeline
from training.dataset import CROP_MODES, load_dataset, stratified_split
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


def flip(face: tf.Tensor) -> tf.Tensor:
    return tf.image.random_flip_left_right(face)


def photo_conditions(face: tf.Tensor) -> tf.Tensor:
    """Flip, plus what users' photos do to a face that the mostly sharp, well-lit, tightly framed training crops
    lack: low resolution (faces far from the camera), a detector's looser or tighter framing, dim or harsh light."""
    size = tf.shape(face)[0]
    face = tf.image.random_flip_left_right(face)
    if tf.random.uniform([]) < 0.5:
        low = tf.random.uniform([], 24, size, dtype=tf.int32)
        face = tf.image.resize(tf.image.resize(face, [low, low], method="area"), [size, size])
    side = tf.cast(tf.cast(size, tf.float32) * tf.random.uniform([], 0.85, 1.0), tf.int32)
    face = tf.image.resize(tf.image.random_crop(face, [side, side, 1]), [size, size])
    exposure, gamma = tf.random.uniform([], 0.4, 1.2), tf.random.uniform([], 0.7, 1.6)
    face = tf.clip_by_value(face * exposure, 0.0, 1.0) ** gamma
    return tf.clip_by_value(tf.image.random_contrast(face, 0.7, 1.3), 0.0, 1.0)


AUGMENTATIONS = {"none": None, "flip": flip, "photo": photo_conditions}


def make_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, augment=None) -> tf.data.Dataset:
    """Arrays already preprocessed and cached, so the input pipeline is a shuffle and, for training, augmentation."""
    data = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, len(CLASS_NAMES))))
    if augment:
        data = data.shuffle(len(x), seed=seed).map(
            lambda face, label: (augment(face), label), num_parallel_calls=tf.data.AUTOTUNE
        )
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/face-mask"))
    parser.add_argument("--crop", choices=CROP_MODES, default="detector",
                        help="detector: train on the face the detector finds (whole image if none); whole: the whole image")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="photo",
                        help="training-only augmentation: none, flip, or photo (flip, low resolution, framing, light)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    parser.add_argument("--out", type=Path, default=KERAS_PATH.parent, help="folder for the model files and card")
    parser.add_argument("--plots", type=Path, default=Path("docs/training"))
    parser.add_argument("--scenes", type=Path, default=Path("../shared/datasets/scenes-dev"),
                        help="real photos with boxes to measure the trained model on (skipped if absent)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    keras.utils.set_random_seed(args.seed)

    detector = load_detector()
    dataset = load_dataset(args.data, detector if args.crop == "detector" else None, args.cache_dir)
    train_idx, val_idx, test_idx = stratified_split(dataset.y, args.val_fraction, args.test_fraction, args.seed)
    log.info("%d images (%d skipped): train %d, validation %d, test %d",
             len(dataset.y), len(dataset.skipped), len(train_idx), len(val_idx), len(test_idx))

    args.out.mkdir(parents=True, exist_ok=True)
    args.plots.mkdir(parents=True, exist_ok=True)
    model_path = args.out / KERAS_PATH.name
    best_weights = args.cache_dir / "best.weights.h5"
    model = build_model()
    model.summary()
    timer = EpochTimer()
    history = model.fit(
        make_batches(dataset.x[train_idx], dataset.y[train_idx], args.batch_size, args.seed, AUGMENTATIONS[args.augment]),
        validation_data=make_batches(dataset.x[val_idx], dataset.y[val_idx], args.batch_size, args.seed),
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.ModelCheckpoint(best_weights, monitor="val_loss", save_best_only=True, save_weights_only=True),
            # Halving Adam's step when validation loss stalls steadies the late epochs, which otherwise swing.
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, min_lr=1e-5),
            timer,
        ],
    ).history
    # The best epoch by validation loss, in a freshly compiled model: the file then holds no optimizer state
    # (11 MB instead of 34 MB) yet is still the specified network compiled with Adam.
    model = build_model()
    model.load_weights(best_weights)
    model.save(model_path)
    best_epoch = int(np.argmin(history["val_loss"])) + 1

    classifier = KerasClassifier(model)
    test_probs = classifier.predict(dataset.x[test_idx])
    test = classification_report(dataset.y[test_idx], test_probs.argmax(axis=1))
    log.info("test accuracy %.4f", test["accuracy"])
    plot_history(history, args.plots / "curves.png")
    plot_confusion(test["confusion_matrix"], args.plots / "confusion_matrix.png", "held-out test split")
    export_tflite(model, args.out / TFLITE_PATH.name)

    scenes = None
    if args.scenes.is_dir():
        scenes = evaluate_scenes(MaskPipeline(detector, classifier), args.scenes)
        log.info("scenes: %s", json.dumps({k: v for k, v in scenes.items() if k != "per_class"}))

    card = {
        "name": "mask_cnn",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "classes": list(CLASS_NAMES),
        "architecture": "Conv2D 200 3x3 relu > MaxPool 2x2 > Conv2D 100 3x3 relu > MaxPool 2x2 > Flatten > "
                        "Dense 50 relu > Dense 2 softmax; Adam, categorical cross-entropy",
        "parameters": model.count_params(),
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
        "split": {"seed": args.seed, "train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)},
        "training": {
            "epochs_run": len(history["loss"]),
            "best_epoch": best_epoch,
            "batch_size": args.batch_size,
            "seconds_per_epoch_median": round(float(np.median(timer.seconds)), 1),
            "history": {k: [round(float(v), 4) for v in vs] for k, vs in history.items()},
        },
        "metrics": {"test": test, "scenes_dev": scenes},
    }
    (args.out / CARD_PATH.name).write_text(json.dumps(card, indent=2) + "\n")
    log.info("wrote %s, %s and %s", model_path, args.out / TFLITE_PATH.name, args.out / CARD_PATH.name)


if __name__ == "__main__":
    main()
