"""The wire format of results, as openapi.yaml describes it: the web layer's own translation of the pipeline's
dataclasses, so the model layer never decides how its answers look over HTTP."""

from model.pipeline import Face, Prediction


def prediction_json(prediction: Prediction) -> dict:
    """`Prediction` in openapi.yaml: label, confidence and both probabilities, rounded to 4 places."""
    return {
        "label": prediction.label,
        "confidence": round(prediction.confidence, 4),
        "probabilities": {k: round(v, 4) for k, v in prediction.probabilities.items()},
    }


def face_json(face: Face) -> dict:
    """`Face` in openapi.yaml: the box in integer pixels of the upright image, then the prediction."""
    x, y, w, h = face.box
    return {"box": {"x": x, "y": y, "w": w, "h": h}, **prediction_json(face.prediction)}
