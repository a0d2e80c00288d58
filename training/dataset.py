"""Training faces as preprocessed arrays, from two kinds of source, each cached on disk once.

- A class-folder dataset (`face-mask/with_mask`, `…/without_mask`): each image's largest detected face.
- Real scenes with labelled boxes (`scenes-train/`, `scenes-extra/`): every two-class face, cropped the way the
  server crops it.
"""

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.detector import FaceDetector
from model.image_io import IMAGE_SUFFIXES, ImageError, decode_image
from model.labels import CLASS_NAMES
from model.preprocess import crop, preprocess_face, to_unit_range
from training.scenes import clip, match, read_voc, scene_files

log = logging.getLogger(__name__)

VAL_FRACTION, TEST_FRACTION, SPLIT_SEED = 0.15, 0.15, 42  # the training command's split, which tests reuse


@dataclass
class FaceDataset:
    x: np.ndarray  # (n, 100, 100, 1) float32
    y: np.ndarray  # (n,) class index into CLASS_NAMES
    fingerprint: str  # sha256 over every file's relative path and bytes
    skipped: list[str]  # files that could not be read as images
    counts: dict[str, int] = field(default_factory=dict)  # what a source holds besides the faces (scenes)


def list_images(data_dir: Path) -> list[tuple[Path, int]]:
    return [
        (path, label)
        for label, name in enumerate(CLASS_NAMES)
        for path in sorted((data_dir / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def face_from_image(image_bgr: np.ndarray, detector: FaceDetector) -> np.ndarray:
    """The largest detected face, or the whole image when the detector finds none (most are tight crops)."""
    detections = detector.detect(image_bgr)
    if not detections:
        return image_bgr
    largest = max(detections, key=lambda d: d.box[2] * d.box[3])
    return crop(image_bgr, largest.box)


def load_dataset(data_dir: Path, detector: FaceDetector, cache_dir: Path | None = None) -> FaceDataset:
    """`data_dir` holds one sub-folder per class, or is a cache file this module wrote: the arrays travel to
    a machine without the images (a GPU to train on) as one file."""
    if data_dir.suffix == ".npz":
        return _read_cache(data_dir)
    files = list_images(data_dir)
    if not files:
        raise FileNotFoundError(f"no images under {data_dir}/{{{','.join(CLASS_NAMES)}}}")
    cache = _cache_path("faces8", data_dir, [p for p, _ in files], detector.fingerprint, cache_dir)
    if cache and cache.exists():
        return _read_cache(cache)

    def load(item: tuple[Path, int]) -> tuple[bytes, np.ndarray | None]:
        path, _ = item
        data = path.read_bytes()
        try:
            return data, preprocess_face(face_from_image(decode_image(data), detector))
        except ImageError:
            return data, None

    digest, faces, labels, skipped = hashlib.sha256(), [], [], []
    with ThreadPoolExecutor() as pool:  # OpenCV releases the GIL while decoding
        results = pool.map(load, files)
        loaded = tqdm(zip(files, results, strict=True), total=len(files), desc="loading", unit="img")
        for (path, label), (data, face) in loaded:
            digest.update(str(path.relative_to(data_dir)).encode() + hashlib.sha256(data).digest())
            if face is None:
                skipped.append(str(path.relative_to(data_dir)))
                continue
            faces.append(face)
            labels.append(label)
    if skipped:
        log.warning("skipped %d unreadable files: %s", len(skipped), ", ".join(skipped[:10]))
    dataset = FaceDataset(np.stack(faces), np.array(labels, dtype=np.int64), digest.hexdigest(), skipped)
    if cache:
        _write_cache(cache, dataset)
    return dataset


def load_scene_faces(scenes_dir: Path, detector: FaceDetector | None, cache_dir: Path | None = None) -> FaceDataset:
    """Every `with_mask` / `without_mask` face of a scenes folder (`with_incorrect_mask` is neither class).

    Every face is cropped on its labelled box, as `evaluate` measures accuracy on ground-truth boxes. With a
    detector, a face it finds (IoU >= 0.4) is cropped again on the box of each of its searches, a photo's and a
    video frame's (one crop where both give the same box), so training also sees the crops the server makes;
    faces it misses keep their labelled crop: those are the small and half-hidden faces the classifier must
    still read when they are found.
    """
    if scenes_dir.suffix == ".npz":
        return _read_cache(scenes_dir)
    pairs = scene_files(scenes_dir)
    mode = f"{detector.fingerprint}+truth" if detector else "truth"
    cache = _cache_path("scenes9", scenes_dir, [p for pair in pairs for p in pair], mode, cache_dir)
    if cache and cache.exists():
        return _read_cache(cache)

    def load(pair: tuple[Path, Path]) -> tuple[bytes, list[tuple[np.ndarray, int, bool]], int]:
        image_path, xml_path = pair
        data = image_path.read_bytes()
        image = decode_image(data)
        truths = read_voc(xml_path)
        searches = [[d.box for d in detector.detect(image, video_frame=frame)] for frame in (False, True)] \
            if detector else []
        matches = [(boxes, match(truths, boxes)) for boxes in searches]
        faces, incorrect = [], 0
        for i, truth in enumerate(truths):
            if truth.label not in CLASS_NAMES:
                incorrect += 1
                continue
            found = dict.fromkeys(boxes[matched[i]] for boxes, matched in matches if i in matched)
            crops = [(clip(truth.box, image.shape), False)] + [(box, True) for box in found]
            for box, by_detector in crops:
                if min(box[2:]) >= 2:
                    faces.append((preprocess_face(crop(image, box)), CLASS_NAMES.index(truth.label), by_detector))
        return data + xml_path.read_bytes(), faces, incorrect

    digest, faces, labels = hashlib.sha256(), [], []
    counts = {"photos": len(pairs), "detector_boxes": 0, "labelled_boxes": 0, "with_incorrect_mask_left_out": 0}
    with ThreadPoolExecutor() as pool:
        for (image_path, _), (data, found, incorrect) in tqdm(
            zip(pairs, pool.map(load, pairs), strict=True), total=len(pairs), desc=f"{scenes_dir.name}", unit="img"
        ):
            digest.update(str(image_path.relative_to(scenes_dir)).encode() + hashlib.sha256(data).digest())
            counts["with_incorrect_mask_left_out"] += incorrect
            for face, label, by_detector in found:
                faces.append(face)
                labels.append(label)
                counts["detector_boxes" if by_detector else "labelled_boxes"] += 1
    y = np.array(labels, dtype=np.int64)
    counts.update({name: int(np.sum(y == k)) for k, name in enumerate(CLASS_NAMES)})
    dataset = FaceDataset(np.stack(faces), y, digest.hexdigest(), [], counts)
    if cache:
        _write_cache(cache, dataset)
    return dataset


def _write_cache(path: Path, dataset: FaceDataset) -> None:
    """Faces stored as the 8-bit grey levels that preprocessing divides by 255, so they read back exactly."""
    levels = np.round(dataset.x * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, levels=levels, y=dataset.y, fingerprint=dataset.fingerprint,
                        skipped=np.array(dataset.skipped, dtype=str),
                        count_names=np.array(list(dataset.counts), dtype=str),
                        count_values=np.array(list(dataset.counts.values()), dtype=np.int64))


def _read_cache(path: Path) -> FaceDataset:
    log.info("using cached arrays %s", path)
    with np.load(path) as saved:
        counts = dict(zip(saved["count_names"].tolist(), saved["count_values"].tolist(), strict=True))
        return FaceDataset(to_unit_range(saved["levels"]), saved["y"], str(saved["fingerprint"]),
                           list(saved["skipped"]), counts)


def _cache_path(kind: str, data_dir: Path, files: list[Path], mode: str, cache_dir: Path | None) -> Path | None:
    """Keyed on the file list, sizes and times and the crop mode, so a changed source or detector is loaded afresh."""
    if cache_dir is None:
        return None
    key = hashlib.sha256(mode.encode())
    for path in files:
        stat = path.stat()
        key.update(f"{path.relative_to(data_dir)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return cache_dir / f"{kind}-{mode.split('-')[0]}-{key.hexdigest()[:16]}.npz"


def stratified_split(
    labels: np.ndarray, val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays for train / validation / test with each class in the same proportions."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[], [], []]
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test, n_val = round(len(idx) * test_fraction), round(len(idx) * val_fraction)
        parts[2].append(idx[:n_test])
        parts[1].append(idx[n_test : n_test + n_val])
        parts[0].append(idx[n_test + n_val :])
    return tuple(np.sort(np.concatenate(p)) for p in parts)  # type: ignore[return-value]
