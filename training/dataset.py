"""Loading the class-folder dataset into preprocessed arrays, once: the result is cached on disk."""

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from model.detector import FaceDetector
from model.image_io import ImageError, decode_image
from model.labels import CLASS_NAMES
from model.preprocess import crop, preprocess_face, to_unit_range

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
CROP_MODES = ("whole", "detector")
VAL_FRACTION, TEST_FRACTION, SPLIT_SEED = 0.15, 0.15, 42  # the training command's split, which tests reuse


@dataclass
class FaceDataset:
    x: np.ndarray  # (n, 100, 100, 1) float32
    y: np.ndarray  # (n,) class index into CLASS_NAMES
    fingerprint: str  # sha256 over every file's relative path and bytes
    skipped: list[str]  # files that could not be read as images


def list_images(data_dir: Path) -> list[tuple[Path, int]]:
    return [
        (path, label)
        for label, name in enumerate(CLASS_NAMES)
        for path in sorted((data_dir / name).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]


def face_from_image(image_bgr: np.ndarray, detector: FaceDetector | None) -> np.ndarray:
    """The largest detected face, or the whole image when there is no detector or it finds nothing."""
    if detector is None:
        return image_bgr
    detections = detector.detect(image_bgr)
    if not detections:
        return image_bgr
    largest = max(detections, key=lambda d: d.box[2] * d.box[3])
    return crop(image_bgr, largest.box)


def load_image_file(path: Path) -> np.ndarray:
    """Training images go through the same decoder as uploads."""
    return decode_image(path.read_bytes())


def load_dataset(data_dir: Path, detector: FaceDetector | None, cache_dir: Path | None = None) -> FaceDataset:
    """`data_dir` holds one sub-folder per class, or is a cache file this function wrote: the arrays travel to
    a machine without the images (a GPU to train on) as one file."""
    if data_dir.suffix == ".npz":
        return _read_cache(data_dir)
    files = list_images(data_dir)
    if not files:
        raise FileNotFoundError(f"no images under {data_dir}/{{{','.join(CLASS_NAMES)}}}")
    cache = _cache_path(data_dir, files, detector, cache_dir) if cache_dir else None
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
        for (path, label), (data, face) in tqdm(zip(files, results, strict=True), total=len(files), desc="loading", unit="img"):
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


def _write_cache(path: Path, dataset: FaceDataset) -> None:
    """Faces stored as their 8-bit grey levels: 32 MB instead of 160 MB, and read back exactly."""
    levels = np.round(dataset.x * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, levels=levels, y=dataset.y, fingerprint=dataset.fingerprint,
                        skipped=np.array(dataset.skipped, dtype=str))


def _read_cache(path: Path) -> FaceDataset:
    log.info("using cached arrays %s", path)
    with np.load(path) as saved:
        return FaceDataset(to_unit_range(saved["levels"]), saved["y"], str(saved["fingerprint"]), list(saved["skipped"]))


def _cache_path(data_dir: Path, files: list[tuple[Path, int]], detector: FaceDetector | None, cache_dir: Path) -> Path:
    """Keyed on the file list, sizes and times and the crop mode, so a changed dataset is loaded afresh."""
    key = hashlib.sha256()
    for path, label in files:
        stat = path.stat()
        key.update(f"{path.relative_to(data_dir)}|{label}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    mode = detector.fingerprint if detector else "whole"
    return cache_dir / f"faces8-{mode}-{key.hexdigest()[:16]}.npz"


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
