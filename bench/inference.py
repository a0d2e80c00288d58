"""In-process speed: one face classified, and a 640×480 one-face JPEG decoded, detected and classified.

    python -m bench.inference

`model.predict` per face, the naive way, is timed in the same run as the baseline, and the Keras model in a
compiled `tf.function` beside the LiteRT export the server runs.
"""

import keras
import numpy as np

from bench.common import median_ms, one_face_jpeg_640x480
from model.classifier import KERAS_PATH
from model.image_io import decode_image
from model.pipeline import MaskPipeline, load_pipeline
from model.preprocess import crop, preprocess_face
from training.keras_classifier import KerasClassifier


def main() -> None:
    jpeg = one_face_jpeg_640x480()
    served = load_pipeline()
    model = keras.models.load_model(KERAS_PATH, compile=False)
    compiled_keras = MaskPipeline(served.detector, KerasClassifier(model))
    image = decode_image(jpeg)
    detections = served.detector.detect(image)
    assert len(detections) == 1, f"expected one face, found {len(detections)}"
    face = preprocess_face(crop(image, detections[0].box))[np.newaxis]

    def naive_analyze() -> None:
        decoded = decode_image(jpeg)
        for detection in served.detector.detect(decoded):
            model.predict(preprocess_face(crop(decoded, detection.box))[np.newaxis], verbose=0)

    baseline = median_ms(lambda: model.predict(face, verbose=0), repeats=50)
    compiled = median_ms(lambda: compiled_keras.classifier.predict(face))
    lite = median_ms(lambda: served.classifier.predict(face))
    print("one face classified (median):")
    print(f"  model.predict (naive baseline)   {baseline:7.2f} ms")
    print(f"  Keras, compiled tf.function      {compiled:7.2f} ms   {baseline / compiled:5.1f}x faster")
    print(f"  LiteRT (served)                  {lite:7.2f} ms   {baseline / lite:5.1f}x faster")

    naive = median_ms(naive_analyze, repeats=50)
    decode = median_ms(lambda: decode_image(jpeg))
    detect = median_ms(lambda: served.detector.detect(image))
    full = median_ms(lambda: compiled_keras.analyze(decode_image(jpeg)))
    full_lite = median_ms(lambda: served.analyze(decode_image(jpeg)))
    print(f"640x480 JPEG, one face: decode + detect ({served.detector.name}) + classify (median):")
    print(f"  decode only                      {decode:7.2f} ms")
    print(f"  detect only                      {detect:7.2f} ms")
    print(f"  with model.predict (baseline)    {naive:7.2f} ms")
    print(f"  Keras, compiled                  {full:7.2f} ms   {naive / full:5.1f}x faster")
    print(f"  LiteRT (served)                  {full_lite:7.2f} ms   {naive / full_lite:5.1f}x faster")


if __name__ == "__main__":
    main()
