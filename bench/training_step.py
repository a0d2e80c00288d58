"""Training speed of the specified network, float32 against mixed bfloat16, in the same run.

    python -m bench.training_step [--faces 1024] [--seconds 60]

Times whole training steps (augmentation front included, batches of the recipe's size) on random faces and
prints the median milliseconds per face per step for each precision, and their ratio.
"""

import argparse
import platform
import time

import keras
import numpy as np

from model.preprocess import INPUT_SHAPE
from training.augment import augmentation
from training.network import build_model
from training.recipe import load_recipe
from training.train import bf16_flags


def seconds_per_step(policy: str, batch_size: int, steps: int, budget_s: float) -> list[float]:
    keras.config.set_dtype_policy(policy)
    recipe = load_recipe()
    trainer = keras.Sequential([keras.Input(INPUT_SHAPE), *augmentation(recipe.augmentation), build_model()])
    trainer.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *INPUT_SHAPE), dtype=np.float32)
    y = keras.utils.to_categorical(rng.integers(0, 2, batch_size), 2)
    trainer.train_on_batch(x, y)  # builds and traces the step
    times, deadline = [], time.monotonic() + budget_s
    while len(times) < steps and time.monotonic() < deadline:
        start = time.perf_counter()
        trainer.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    keras.config.set_dtype_policy("float32")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per precision, at most")
    parser.add_argument("--seconds", type=float, default=60, help="time per precision, at most")
    args = parser.parse_args()
    batch = load_recipe().batch_size
    print(f"{platform.processor() or platform.machine()}, bf16 flags: {', '.join(bf16_flags()) or 'none'}; "
          f"batch {batch}")
    medians = {}
    for policy in ("float32", "mixed_bfloat16"):
        times = seconds_per_step(policy, batch, args.steps, args.seconds)
        medians[policy] = float(np.median(times)) / batch * 1000
        print(f"{policy:>15}: {medians[policy]:.2f} ms per face per step (median of {len(times)} steps)")
    print(f"float32 / mixed_bfloat16: {medians['float32'] / medians['mixed_bfloat16']:.2f}x")


if __name__ == "__main__":
    main()
