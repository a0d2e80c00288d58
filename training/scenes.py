"""Real photos with PASCAL VOC face boxes: reading the boxes and matching detections to them."""

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

IOU_THRESHOLD = 0.4
SIZE_BANDS = {"<24": (0, 24), "24-47": (24, 48), ">=48": (48, 1_000_000)}  # a face's shorter side, pixels


@dataclass(frozen=True)
class GroundTruth:
    box: tuple[int, int, int, int]  # x, y, w, h
    label: str  # with_mask, without_mask or with_incorrect_mask

    @property
    def size_band(self) -> str:
        side = min(self.box[2:])
        return next(band for band, (low, high) in SIZE_BANDS.items() if low <= side < high)


def read_voc(path: Path) -> list[GroundTruth]:
    faces = []
    for obj in ET.parse(path).getroot().iter("object"):
        bb = obj.find("bndbox")
        x0, y0, x1, y1 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
        faces.append(GroundTruth((x0, y0, x1 - x0, y1 - y0), obj.findtext("name")))
    return faces


def scene_files(scenes_dir: Path) -> list[tuple[Path, Path]]:
    """(image, annotation) pairs of a scenes folder: images/NAME.* beside annotations/NAME.xml."""
    pairs = []
    for xml_path in sorted((scenes_dir / "annotations").glob("*.xml")):
        pairs.append((next((scenes_dir / "images").glob(xml_path.stem + ".*")), xml_path))
    return pairs


def clip(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """A labelled box cut to the image; labels sometimes run a pixel or two past its edge."""
    x, y, w, h = box
    x0, y0 = max(0, x), max(0, y)
    return x0, y0, max(0, min(shape[1], x + w) - x0), max(0, min(shape[0], y + h) - y0)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union else 0.0


def match(truths: list[GroundTruth], boxes: list[tuple[int, int, int, int]]) -> dict[int, int]:
    """Greedy one-to-one matching, best overlap first: ground-truth index → box index."""
    pairs = sorted(
        ((iou(t.box, b), ti, bi) for ti, t in enumerate(truths) for bi, b in enumerate(boxes)), reverse=True
    )
    matched: dict[int, int] = {}
    used: set[int] = set()
    for overlap, ti, bi in pairs:
        if overlap < IOU_THRESHOLD:
            break
        if ti not in matched and bi not in used:
            matched[ti] = bi
            used.add(bi)
    return matched
