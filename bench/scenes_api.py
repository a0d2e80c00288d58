"""The web layer loses nothing: scenes-dev through POST /api/detect on real gunicorn vs the pipeline in-process.

    python -m bench.scenes_api
"""

import json

import requests

from harness.paths import DATASETS
from harness.servers import run_gunicorn
from model.image_io import decode_image
from model.pipeline import Face, Prediction, load_pipeline
from training.evaluate import evaluate_scenes

SCENES = DATASETS / "scenes-dev"


def face_from_json(face: dict) -> Face:
    box = tuple(face["box"][k] for k in "xywh")
    return Face(box, Prediction(face["label"], face["confidence"], face["probabilities"]))


def main() -> None:
    pipeline = load_pipeline()
    differences = 0
    with run_gunicorn({"WEB_CONCURRENCY": "1"}) as (url, _):
        session = requests.Session()

        def through_api(path):
            response = session.post(f"{url}/api/detect", files={"image": (path.name, path.read_bytes())}, timeout=60)
            response.raise_for_status()
            return [face_from_json(f) for f in response.json()["faces"]]

        def compared(path):
            nonlocal differences
            api_faces = through_api(path)
            local = pipeline.analyze(decode_image(path.read_bytes())).faces
            same = [(f.box, f.prediction.label) for f in api_faces] == [(f.box, f.prediction.label) for f in local]
            differences += not same
            return api_faces

        over_http = evaluate_scenes(pipeline, SCENES, compared)
    in_process = evaluate_scenes(pipeline, SCENES)
    keys = ("detect_recall", "crop_accuracy", "end_to_end_accuracy")
    print(json.dumps({"in_process": {k: in_process[k] for k in keys}, "http_api": {k: over_http[k] for k in keys}},
                     indent=2))
    print(f"images whose boxes or labels differ between the API and in-process: {differences} of "
          f"{in_process['images']}")


if __name__ == "__main__":
    main()
