"""Drawing numbered boxes and their labels on a copy of the image, placed so that a crowd stays readable.

Face n of the list (the API's order) carries the number n. Each label goes next to its box where it covers no
other face's box and no other label, and inside the image; where a crowd leaves no room for "17 No mask 87%",
the number alone ("17") is placed the same way, smaller if need be (down to MIN_TEXT_PX); where even that finds
no room, the number goes inside the face's own box. Text size follows the image's longer side, so the drawing
reads the same once the photo is shown at screen size; the photo page lays out its labels by the same rules
(static/js/faces.js).
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
NUMBER_SHRINK = (0.75, 0.5)  # smaller numbers tried where a crowd leaves no room for the full-size one

Rect = tuple[int, int, int, int]  # x, y, w, h


@dataclass(frozen=True)
class Tag:
    """One face's label as drawn: its text, where it goes, and whether it is the whole label or the number."""

    text: str
    rect: Rect
    full: bool
    font_scale: float
    thickness: int


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


def place_labels(size: tuple[int, int], boxes: list[Rect], full: list[Rect], short: list[list[Rect]],
                 line: int) -> list[tuple[Rect, bool, int]]:
    """For each box, where its label goes, whether it is the whole label, and which of its `short` sizes (the
    number, from large to small) it has: the `full` size where it fits, else the largest number that fits
    outside the box, else inside it. `size` is (width, height); `line` the boxes' line width, kept clear as part
    of them. A box that overlaps this face's own (a face detected inside another's) cannot be kept clear and is
    not. Where nothing fits, the smallest number goes inside the box's top left corner regardless."""
    width, height = size
    grown = [(x - line, y - line, w + 2 * line, h + 2 * line) for x, y, w, h in boxes]
    placed: list[Rect] = []
    out = []
    for i, box in enumerate(boxes):
        blocked = [g for j, g in enumerate(grown) if j != i and not _overlaps(boxes[j], box)] + placed
        sizes = [(full[i], True, 0)] + [(s, False, k) for k, s in enumerate(short[i])]
        chosen = next(((rect, is_full, k) for s, is_full, k in sizes
                       for rect in _candidates(box, s[2], s[3], width, height)
                       if not any(_overlaps(rect, b) for b in blocked)), None)
        if chosen is None:
            inside = [((box[0] + line, box[1] + line, s[2], s[3]), False, k) for k, s in enumerate(short[i])
                      if s[2] <= box[2] - 2 * line and s[3] <= box[3] - 2 * line]
            chosen = next((c for c in inside if not any(_overlaps(c[0], b) for b in blocked)), None)
        if chosen is None:
            w, h = short[i][-1][2:]
            chosen = ((min(max(0, box[0]), max(0, width - w)), min(max(0, box[1]), max(0, height - h)), w, h),
                      False, len(short[i]) - 1)
        placed.append(chosen[0])
        out.append(chosen)
    return out


def layout(image_shape: tuple[int, ...], faces: list[Face]) -> tuple[list[Tag], int]:
    """The tags of `faces` on an image of `image_shape`, and the line thickness of the boxes."""
    height, width = image_shape[:2]
    text_px = max(MIN_TEXT_PX, round(max(height, width) * TEXT_HEIGHT))
    thickness = max(1, round(text_px / 10))
    scales = [1.0] + [f for f in NUMBER_SHRINK if text_px * f >= MIN_TEXT_PX]

    def size(text: str, px: float) -> tuple[Rect, float, int]:
        weight = max(1, round(px / 10))
        font_scale = cv2.getFontScaleFromHeight(FONT, round(px), weight)
        (tw, th), baseline = cv2.getTextSize(text, FONT, font_scale, weight)
        pad = max(2, round(px) // 4)
        return (0, 0, tw + 2 * pad, th + baseline + 2 * pad), font_scale, weight

    texts = [(label_text(n, f), str(n)) for n, f in enumerate(faces, start=1)]
    full = [size(t[0], text_px) for t in texts]
    short = [[size(t[1], text_px * f) for f in scales] for t in texts]
    placements = place_labels((width, height), [f.box for f in faces], [f[0] for f in full],
                              [[s[0] for s in sizes] for sizes in short], max(2, thickness))
    tags = []
    for t, f, sizes, (rect, is_full, k) in zip(texts, full, short, placements, strict=True):
        _, font_scale, weight = f if is_full else sizes[k]
        tags.append(Tag(t[0] if is_full else t[1], rect, is_full, font_scale, weight))
    return tags, max(2, thickness)


def annotate(image_bgr: np.ndarray, faces: list[Face]) -> np.ndarray:
    out = image_bgr.copy()
    tags, line = layout(out.shape, faces)
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), COLOURS_BGR[face.prediction.label], line)
    for face, tag in zip(faces, tags, strict=True):
        x, y, w, h = tag.rect
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), COLOURS_BGR[face.prediction.label], cv2.FILLED)
        (_, th), baseline = cv2.getTextSize(tag.text, FONT, tag.font_scale, tag.thickness)
        pad = (h - th - baseline) // 2
        cv2.putText(out, tag.text, (x + pad, y + pad + th), FONT, tag.font_scale, (255, 255, 255), tag.thickness,
                    cv2.LINE_AA)
    return out
