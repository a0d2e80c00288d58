"""Drawing numbered boxes and their labels on a copy of the image, placed so that a crowd stays readable.

Face n of the list (the API's order) carries the number n. Each label goes next to its box where it covers no
other face's box and no other label, and inside the image; where a crowd leaves no room for "17 No mask 87%",
the number alone ("17") is placed the same way; where even that finds no room, the number goes inside the face's
own box. Text size follows the image's longer side, so the drawing reads the same once the photo is shown at
screen size; the photo page lays out its labels by the same rules (static/js/faces.js).
"""

from dataclasses import dataclass

import cv2
import numpy as np

from model.pipeline import Face

COLOURS_BGR = {"with_mask": (60, 160, 40), "without_mask": (40, 40, 220)}  # green, red
LABEL_TEXT = {"with_mask": "Mask", "without_mask": "No mask"}
FONT = cv2.FONT_HERSHEY_SIMPLEX
TEXT_HEIGHT = 0.02  # of the image's longer side: photos are seen shrunk to a screen, whatever their resolution
MIN_TEXT_PX = 12

Rect = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Tag:
    """One face's label as drawn: its text, where it goes, and whether it is the whole label or the number."""

    text: str
    rect: Rect
    full: bool


def label_text(number: int, face: Face) -> str:
    return f"{number} {LABEL_TEXT[face.prediction.label]} {face.prediction.confidence:.0%}"


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _candidates(box: Rect, w: int, h: int, width: int, height: int) -> list[Rect]:
    """Above, below, left and right of the box, shifted sideways to stay inside the image."""
    x, y, bw, bh = box
    middle = x + (bw - w) // 2
    spots = [(x, y - h), (x, y + bh), (x + bw - w, y - h), (x + bw - w, y + bh), (middle, y - h), (middle, y + bh),
             (x - w, y), (x + bw, y), (x - w, y + bh - h), (x + bw, y + bh - h)]
    rects = []
    for left, top in spots:
        left = min(max(0, left), width - w)
        if 0 <= top <= height - h and left >= 0:
            rects.append((left, top, w, h))
    return rects


def place_labels(size: tuple[int, int], boxes: list[Rect], full: list[Rect], short: list[Rect],
                 line: int) -> list[tuple[Rect, bool]]:
    """For each box, where its label goes: the `full` label size where it fits, else the `short` (number) size,
    else inside the box. `size` is (width, height); `line` the boxes' line width, kept clear as part of them."""
    width, height = size
    grown = [(x - line, y - line, w + 2 * line, h + 2 * line) for x, y, w, h in boxes]
    placed: list[Rect] = []
    out = []
    for i, box in enumerate(boxes):
        others = grown[:i] + grown[i + 1 :]
        chosen = None
        for (w, h), is_full in (((full[i][2], full[i][3]), True), ((short[i][2], short[i][3]), False)):
            for rect in _candidates(box, w, h, width, height):
                if not any(_overlaps(rect, r) for r in others + placed):
                    chosen = (rect, is_full)
                    break
            if chosen:
                break
        if chosen is None:  # no room outside: the number inside its own box's top left corner
            w, h = short[i][2], short[i][3]
            chosen = ((min(max(0, box[0]), max(0, width - w)), min(max(0, box[1]), max(0, height - h)), w, h), False)
        placed.append(chosen[0])
        out.append(chosen)
    return out


def layout(image_shape: tuple[int, ...], faces: list[Face]) -> tuple[list[Tag], float, int]:
    """The tags of `faces` on an image of `image_shape`, the font scale and the line thickness."""
    height, width = image_shape[:2]
    text_px = max(MIN_TEXT_PX, round(max(height, width) * TEXT_HEIGHT))
    thickness = max(1, round(text_px / 10))
    font_scale = cv2.getFontScaleFromHeight(FONT, text_px, thickness)
    pad = max(2, text_px // 4)

    def size(text: str) -> Rect:
        (tw, th), baseline = cv2.getTextSize(text, FONT, font_scale, thickness)
        return 0, 0, tw + 2 * pad, th + baseline + 2 * pad

    texts = [(label_text(n, f), str(n)) for n, f in enumerate(faces, start=1)]
    placements = place_labels((width, height), [f.box for f in faces], [size(t[0]) for t in texts],
                              [size(t[1]) for t in texts], max(2, thickness))
    tags = [Tag(t[0] if full else t[1], rect, full) for t, (rect, full) in zip(texts, placements, strict=True)]
    return tags, font_scale, thickness


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    out = image_bgr.copy()
    tags, font_scale, thickness = layout(out.shape, faces)
    line = max(2, thickness)
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), COLOURS_BGR[face.prediction.label], line)
    for face, tag in zip(faces, tags, strict=True):
        x, y, w, h = tag.rect
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), COLOURS_BGR[face.prediction.label], cv2.FILLED)
        (_, th), baseline = cv2.getTextSize(tag.text, FONT, font_scale, thickness)
        pad = (h - th - baseline) // 2
        cv2.putText(out, tag.text, (x + pad, y + pad + th), FONT, font_scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out
