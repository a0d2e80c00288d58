"""Train the mask CNN and write the model, its LiteRT export, a model card and plots.

    python -m training.train --data ../shared/datasets/face-mask
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
from training.synthetic_masks import paint_mask

log = logging.getLogger("training")


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None) -> None:
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


DARKEST_GAIN = 0.03


def darken(faces: tf.Tensor | np.ndarray, gain: tf.Tensor | float) -> tf.Tensor:
    """Faces at a fraction of their exposure, back on the 8-bit grid a camera gives."""
    return tf.round(faces * gain * 255.0) / 255.0


def underexpose(faces: tf.Tensor) -> tf.Tensor:
    """Darkens half the faces by a gain between DARKEST_GAIN and 1 (log-uniform), as in dim webcam frames, which
    the training photos lack: without it the network calls nearly every face in a frame at 15% exposure masked."""
    shape = [tf.shape(faces)[0], 1, 1, 1]
    gain = tf.exp(tf.random.uniform(shape, np.log(DARKEST_GAIN), 0.0))
    return tf.where(tf.random.uniform(shape) < 0.5, darken(faces, gain), faces)


def pose_and_light() -> list[keras.Layer]:
    """What users' photos do that the training crops rarely show: a tilted head, a detector box a little off
    centre, looser or tighter, other light."""
    return [
        keras.layers.RandomFlip("horizontal"),
        keras.layers.RandomRotation(0.04),  # ±15°
        keras.layers.RandomZoom(0.15),
        keras.layers.RandomTranslation(0.08, 0.08),
        keras.layers.RandomContrast(0.3, value_range=(0, 1)),
        keras.layers.RandomBrightness(0.2, value_range=(0, 1)),
    ]


# Each augmentation is a stack of Keras preprocessing layers applied to whole batches of cached 100×100 faces.
AUGMENTATIONS = {
    "none": lambda: [],
    "flip": lambda: [keras.layers.RandomFlip("horizontal")],
    "pose-light": pose_and_light,
    "pose-light-dim": lambda: [*pose_and_light(), keras.layers.Lambda(underexpose)],
}


def make_batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    seed: int,
    augment: str | None = None,
    synthetic_masks: float = 0.0,
) -> tf.data.Dataset:
    """Arrays already preprocessed and cached, so the input pipeline is cheap: training batches (`augment` names
    an entry of AUGMENTATIONS) are shuffled and augmented; evaluation batches (`augment=None`) come in order.

    `synthetic_masks` is the share of masked training faces replaced by a bare one with a mask painted on, so
    that the classes keep their sizes while each bare face is sometimes seen masked too.
    """
    data = tf.data.Dataset.from_tensor_slices((x, keras.utils.to_categorical(y, len(CLASS_NAMES))))
    if augment is None:
        return data.batch(batch_size).prefetch(tf.data.AUTOTUNE)
    data = data.shuffle(len(x), seed=seed)
    if synthetic_masks:
        bare = x[y == CLASS_NAMES.index("without_mask")]
        bare_faces = tf.data.Dataset.from_tensor_slices(bare).shuffle(len(bare), seed=seed + 1).repeat()
        masked = CLASS_NAMES.index("with_mask")

        def swap(sample: tuple[tf.Tensor, tf.Tensor], bare_face: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            face, label = sample
            replace = (label[masked] == 1.0) & (tf.random.uniform([]) < synthetic_masks)
            return tf.cond(replace, lambda: paint_mask(bare_face), lambda: face), label

        data = tf.data.Dataset.zip(data, bare_faces).map(swap, num_parallel_calls=tf.data.AUTOTUNE)
    data = data.batch(batch_size)
    if layers := AUGMENTATIONS[augment]():
        augmentation = keras.Sequential(layers)
        data = data.map(lambda faces, labels: (augmentation(faces, training=True), labels), num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets/face-mask"))
    parser.add_argument("--crop", choices=CROP_MODES, default="detector",
                        help="detector: train on the face the detector finds (whole image if none); whole: the whole image")
    parser.add_argument("--epochs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--test-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--augment", choices=AUGMENTATIONS, default="pose-light-dim")
    parser.add_argument("--synthetic-masks", type=float, default=0.0,
                        help="share of masked training faces replaced by a bare one with a mask painted on (0: none)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's initial rate, cosine-decayed to 0")
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
    steps = args.epochs * math.ceil(len(train_idx) / args.batch_size)
    model = build_model(keras.optimizers.schedules.CosineDecay(args.learning_rate, steps))
    model.summary()
    timer = EpochTimer()
    history = model.fit(
        make_batches(
            dataset.x[train_idx], dataset.y[train_idx], args.batch_size, args.seed, args.augment, args.synthetic_masks
        ),
        validation_data=make_batches(dataset.x[val_idx], dataset.y[val_idx], args.batch_size, args.seed),
        epochs=args.epochs,
        callbacks=[
            keras.callbacks.ModelCheckpoint(best_weights, monitor="val_loss", save_best_only=True, save_weights_only=True),
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
    x_test, y_test = dataset.x[test_idx], dataset.y[test_idx]
    test = classification_report(y_test, classifier.predict(x_test).argmax(axis=1))
    recall_by_exposure = {}  # webcam frames in a dim room: the same test faces with every pixel scaled down
    for exposure in (0.5, 0.25, 0.15, 0.05):
        report = classification_report(y_test, classifier.predict(x_test * exposure).argmax(axis=1))
        recall_by_exposure[f"{exposure:g}"] = {name: round(c["recall"], 4) for name, c in report["per_class"].items()}
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
            "synthetic_masks": args.synthetic_masks,
        },
        "split": {"seed": args.seed, "train": len(train_idx), "validation": len(val_idx), "test": len(test_idx)},
        "training": {
            "epochs_run": len(history["loss"]),
            "best_epoch": best_epoch,
            "batch_size": args.batch_size,
            "learning_rate": f"Adam, {args.learning_rate:g} cosine-decayed to 0 over {args.epochs} epochs",
            "seconds_per_epoch_median": round(float(np.median(timer.seconds)), 1),
            "history": {k: [round(float(v), 4) for v in vs] for k, vs in history.items()},
        },
        "metrics": {"test": test, "test_recall_by_exposure": recall_by_exposure, "scenes_dev": scenes},
    }
    (args.out / CARD_PATH.name).write_text(json.dumps(card, indent=2) + "\n")
    log.info("wrote %s, %s and %s", model_path, args.out / TFLITE_PATH.name, args.out / CARD_PATH.name)


if __name__ == "__main__":
    main()
