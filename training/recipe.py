"""The training recipe as data: `training/recipe.json` is what the committed model was trained with, so the
command's defaults cannot drift from what ships. Study runs change single keys with `--set`."""

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

RECIPE_PATH = Path(__file__).with_name("recipe.json")


@dataclass(frozen=True)
class Augmentation:
    flip: bool
    rotation: float  # fraction of a full turn, either way
    zoom: float
    translation: float
    contrast: float
    brightness: float
    underexposed_share: float  # of the faces in each batch, darkened as in a dim room


@dataclass(frozen=True)
class Recipe:
    epochs: int
    batch_size: int
    learning_rate: float  # Adam's peak rate, cosine-decayed to 0 by the end of the run
    warmup_epochs: int  # the rate rises linearly from 0 to its peak over these first epochs
    class_weight: str  # "balanced" (each class by the inverse of its share) or "none"
    face_mask_weight: float  # a face-mask portrait's weight in the loss against a scene face's
    init_seed: int  # initial weights, augmentation and shuffling
    augmentation: Augmentation

    def as_dict(self) -> dict:
        return asdict(self)


def load_recipe(path: Path = RECIPE_PATH, overrides: list[str] = ()) -> Recipe:
    """The recipe file with `KEY=VALUE` overrides (`augmentation.zoom=0.15`); values are JSON."""
    data = json.loads(Path(path).read_text())
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ValueError(f"--set takes KEY=VALUE, not {override!r}")
        *parents, leaf = key.split(".")
        target = data
        for parent in parents:
            target = target[parent]
        if leaf not in target:
            raise ValueError(f"the recipe has no key {key!r}")
        target[leaf] = json.loads(value)
    return _from_dict(data)


def _from_dict(data: dict) -> Recipe:
    expected = {f.name for f in fields(Recipe)}
    if set(data) != expected:
        raise ValueError(f"a recipe has exactly the keys {sorted(expected)}, not {sorted(data)}")
    if data["class_weight"] not in ("balanced", "none"):
        raise ValueError("class_weight is 'balanced' or 'none'")
    if data["face_mask_weight"] <= 0:
        raise ValueError("face_mask_weight is above 0")
    if not 0 <= data["warmup_epochs"] < data["epochs"]:
        raise ValueError(f"warmup_epochs is from 0 to fewer than epochs ({data['epochs']}), "
                         f"not {data['warmup_epochs']}")
    return Recipe(**{**data, "augmentation": Augmentation(**data["augmentation"])})
