"""Exporting the trained Keras network to LiteRT: a float32 file that gives Keras's probabilities, and the
full-integer (int8) file the server runs, the same network with its weights and activations in 8 bits.

    python -m training.export --data ../shared/datasets/face-mask --scenes-train ../shared/datasets/scenes-train \\
        ../shared/datasets/scenes-extra

exports model/mask_cnn.keras again without training (the card's split, the same calibration faces as training).
"""

import argparse
import json
import logging
from pathlib import Path

import keras
import numpy as np

from model.classifier import CARD_PATH, INT8_PATH, KERAS_PATH, TFLITE_PATH
from model.detector import load_detector

CALIBRATION_FACES = 300  # training faces whose activations set the int8 ranges
CALIBRATION_SEED = 0

log = logging.getLogger(__name__)


def export_tflite(model: keras.Model, path: Path) -> None:
    """Float32, no quantisation: the same probabilities as Keras within 1e-4 (tests/test_export.py)."""
    model.export(str(path), format="litert", verbose=False)


def calibration_faces(faces: np.ndarray, count: int = CALIBRATION_FACES, seed: int = CALIBRATION_SEED) -> np.ndarray:
    """A fixed random sample of `count` preprocessed training faces (never faces that measure the model)."""
    chosen = np.random.default_rng(seed).choice(len(faces), size=min(count, len(faces)), replace=False)
    return faces[np.sort(chosen)]


def export_int8(model: keras.Model, path: Path, calibration: np.ndarray) -> None:
    """Full-integer post-training quantisation: int8 weights and activations, int8 kernels only, and float32
    input and output, so that the server feeds it the same preprocessed face and reads the same probabilities.

    `calibration` ((n, 100, 100, 1) float32 training faces) sets each activation's range.
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([face[np.newaxis]] for face in np.asarray(calibration, np.float32))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.float32
    converter.inference_output_type = tf.float32
    path.write_bytes(converter.convert())


def export_all(model: keras.Model, out_dir: Path, training_faces: np.ndarray) -> dict:
    """Both exports into `out_dir`, the int8 one calibrated on a sample of `training_faces`; returns the card's
    `exports` record."""
    export_tflite(model, out_dir / TFLITE_PATH.name)
    calibration = calibration_faces(training_faces)
    export_int8(model, out_dir / INT8_PATH.name, calibration)
    return {
        TFLITE_PATH.name: "LiteRT, float32: the Keras model's probabilities",
        INT8_PATH.name: {
            "quantisation": "full-integer post-training (TFLiteConverter, Optimize.DEFAULT, int8 builtins only); "
                            "int8 weights and activations, float32 input and output",
            "calibration": f"{len(calibration)} training faces drawn with seed {CALIBRATION_SEED}",
        },
    }


def main() -> None:
    from training.dataset import load_dataset, load_scene_faces, stratified_split

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=KERAS_PATH, help="a trained .keras file, its card beside it")
    parser.add_argument("--data", type=Path, required=True, help="the face-mask folder it was trained on (or arrays)")
    parser.add_argument("--scenes-train", type=Path, nargs="*", default=[],
                        help="the folders of scene photos it was trained on too (or arrays)")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    card_path = args.model.with_name(CARD_PATH.name)
    card = json.loads(card_path.read_text())
    detector = load_detector()
    faces = load_dataset(args.data, detector, args.cache_dir)
    if card["training_data"]["sources"]["face-mask"]["fingerprint_sha256"] != faces.fingerprint:
        raise SystemExit(f"{args.model} was trained on other data than {args.data}")
    train_idx, _, _ = stratified_split(faces.y, seed=card["split"]["seed"])
    training = [faces.x[train_idx]]
    training += [load_scene_faces(folder, detector, args.cache_dir).x for folder in args.scenes_train]
    card["exports"] = export_all(keras.models.load_model(args.model, compile=False), args.model.parent,
                                 np.concatenate(training))
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    log.info("wrote %s, %s and the card's exports record in %s", TFLITE_PATH.name, INT8_PATH.name, card_path)


if __name__ == "__main__":
    main()
