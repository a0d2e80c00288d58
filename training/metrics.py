"""Classification figures and plots shared by training and evaluation."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from model.labels import CLASS_NAMES


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, per-class precision and recall, and the confusion matrix (rows: truth, columns: prediction)."""
    n = len(CLASS_NAMES)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (y_true, y_pred), 1)
    per_class = {}
    for i, name in enumerate(CLASS_NAMES):
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        per_class[name] = {
            "precision": float(confusion[i, i] / predicted) if predicted else 0.0,
            "recall": float(confusion[i, i] / actual) if actual else 0.0,
            "support": int(actual),
        }
    return {
        "accuracy": float(np.trace(confusion) / confusion.sum()) if confusion.sum() else 0.0,
        "per_class": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def plot_confusion(confusion: list[list[int]], path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(confusion, cmap="Blues")
    ax.set(xticks=range(len(CLASS_NAMES)), yticks=range(len(CLASS_NAMES)), xlabel="predicted", ylabel="true",
           title=title)
    ax.set_xticklabels(CLASS_NAMES)
    ax.set_yticklabels(CLASS_NAMES)
    peak = max(max(row) for row in confusion) or 1
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            ax.text(j, i, str(count), ha="center", va="center", color="white" if count > peak / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history: dict[str, list[float]], path: Path) -> None:
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.5))
    epochs = range(1, len(history["loss"]) + 1)
    for key, ax in (("loss", loss_ax), ("accuracy", acc_ax)):
        ax.plot(epochs, history[key], label="train")
        ax.plot(epochs, history[f"val_{key}"], label="validation")
        if key == "accuracy" and "choice_balanced_accuracy" in history:
            ax.plot(epochs, history["choice_balanced_accuracy"], label="scenes, balanced")
        ax.set(xlabel="epoch", title=key)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_contact_sheet(faces: list[tuple[np.ndarray, str, str]], path: Path, title: str, columns: int = 12) -> None:
    """Misread faces as the network sees them (grey, 100×100), each titled with its true label and size."""
    from model.preprocess import preprocess_face

    rows = max(1, -(-len(faces) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.1, rows * 1.35 + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (face, truth, _) in zip(axes.flat, faces, strict=False):
        ax.imshow(preprocess_face(face)[..., 0], cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{'bare' if truth == 'without_mask' else 'mask'} {min(face.shape[:2])}px", fontsize=7)
    fig.suptitle(f"{title}: {len(faces)} faces (true label, shorter side)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
