"""A recipe study: many fits of `training.train`, several at once on one machine (a lent GPU), each scored on the
faces runs are chosen by, and the rule of docs/training.md applied to the scores.

    KERAS_BACKEND=jax python -m training.study --plan training/studies/gpu1.json --data .cache/faces8-….npz \\
        --scenes-train .cache/scenes9-photo-….npz .cache/scenes9-photo-….npz --choose-on .cache/scenes9-truth-….npz \\
        --out runs/study

Each run is `python -m training.train --stage fit` with the plan's reference keys, one knob's keys and a seed.
Runs start seed by seed (every config's first seed, then every second one), so a budget that runs out leaves
whole seeds. A run that finished keeps its score in its folder (`score.json`): the study run again, or another
plan with the same reference, scores it from there instead of fitting it again. The rule:
- a run's score: balanced accuracy on the --choose-on faces at its threshold of best balanced accuracy (the
  card's `decision`, chosen as `training.train --stage measure` chooses it);
- a knob is adopted when the mean score of its seeds beats the reference's mean, over the same seeds, by at
  least the plan's margin;
- the final recipe is the reference with every adopted knob; if no config run so far is it, its seeds run next;
- the candidate for committing is the final recipe's seed with the best score (a tie goes to the lower seed).
"""

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from training.dataset import FaceDataset, load_scene_faces
from training.train import choose_threshold

log = logging.getLogger("training.study")
REFERENCE = "reference"
SCORE_FILE = "score.json"  # a finished run's result: a study run again scores it from here instead of fitting it


@dataclass
class Run:
    config: str
    seed: int
    keys: dict
    out: Path  # the study's folder
    process: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    result: dict | None = None

    @property
    def name(self) -> str:
        return f"{self.config.replace(' ', '_')}-s{self.seed}"

    @property
    def folder(self) -> Path:
        return self.out / self.name


def merge(base: dict, keys: dict) -> dict:
    merged = dict(base)
    for key, value in keys.items():
        merged[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
    return merged


def set_arguments(keys: dict, prefix: str = "") -> list[str]:
    """`--set` arguments for (nested) recipe keys."""
    arguments = []
    for key, value in keys.items():
        if isinstance(value, dict):
            arguments += set_arguments(value, f"{prefix}{key}.")
        else:
            arguments += ["--set", f"{prefix}{key}={json.dumps(value)}"]
    return arguments


def start(run: Run, args: argparse.Namespace) -> None:
    run.folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "training.train", "--stage", "fit", "--precision", args.precision,
               "--data", str(args.data), "--scenes-train", *map(str, args.scenes_train),
               "--choose-on", str(args.choose_on), "--out", str(run.folder),
               *set_arguments({**run.keys, "init_seed": run.seed})]
    log.info("start %s: %s", run.name, " ".join(command[2:]))
    with (run.folder / "log.txt").open("w") as output:
        run.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    run.started = time.monotonic()


def score(run: Run, choose_on: FaceDataset) -> dict:
    """The run's card record and its score on the --choose-on faces at its own best threshold."""
    training = json.loads((run.folder / "mask_cnn.json").read_text())["training"]
    model = keras.models.load_model(run.folder / "mask_cnn.keras", compile=False)
    decision = choose_threshold(model.predict(choose_on.x, batch_size=256, verbose=0), choose_on)
    threshold = decision["without_mask_threshold"]
    history = training["history"]
    best = training["best_epoch"] - 1
    return {
        "score": decision["balanced_accuracy_by_threshold"][f"{threshold:g}"], "threshold": threshold,
        "at_argmax": {k.removeprefix("choice_"): history[k][best] for k in history if k.startswith("choice_")},
        "best_epoch": training["best_epoch"], "epochs_run": training["epochs_run"],
        "clean_training_accuracy": training["clean_training_accuracy"],
        "final_loss": history["loss"][-1], "seconds_fitting": training["seconds_fitting"],
        "precision": training["precision"], "backend": training["backend"],
    }


def execute(queue: list[Run], args: argparse.Namespace, deadline: float, choose_on: FaceDataset) -> None:
    """Runs the queue, `args.parallel` at a time; no run starts that the median run so far would not finish before
    the deadline, and runs still going at the deadline are stopped (their result stays None)."""
    running: list[Run] = []
    done: list[Run] = []
    while queue or running:
        for run in [r for r in running if r.process.poll() is not None]:
            running.remove(run)
            run.seconds = time.monotonic() - run.started
            if run.process.returncode == 0:
                run.result = score(run, choose_on)
                (run.folder / SCORE_FILE).write_text(json.dumps(run.result, indent=1))
                log.info("done %s in %.0f s: %s", run.name, run.seconds, json.dumps(run.result))
            else:
                log.error("%s failed (exit %d): see %s", run.name, run.process.returncode, run.folder / "log.txt")
            done.append(run)
        typical = float(np.median([r.seconds for r in done])) if done else 0.0
        while queue and len(running) < args.parallel and time.monotonic() + typical < deadline:
            start(run := queue.pop(0), args)
            running.append(run)
        if time.monotonic() >= deadline or (queue and not running):
            break
        time.sleep(1)
    for run in running:
        run.process.terminate()
        log.warning("stopped %s at the deadline", run.name)
    for run in queue:
        log.warning("not started for time: %s", run.name)


def unfinished(runs: list[Run]) -> list[Run]:
    """The runs still to fit; those that finished before take their result from their folder."""
    for run in runs:
        if (run.folder / SCORE_FILE).exists():
            run.result = json.loads((run.folder / SCORE_FILE).read_text())
            log.info("already run: %s", run.name)
    return [r for r in runs if r.result is None]


def means(runs: list[Run], config: str, seeds: set[int]) -> float | None:
    scores = [r.result["score"] for r in runs if r.config == config and r.seed in seeds and r.result]
    return float(np.mean(scores)) if scores and len(scores) == len(seeds) else None


def finished_seeds(runs: list[Run], config: str) -> set[int]:
    return {r.seed for r in runs if r.config == config and r.result}


def decide(plan: dict, runs: list[Run]) -> dict:
    """The rule of the module's docstring, on the runs that finished."""
    reference_seeds = finished_seeds(runs, REFERENCE)
    knobs = {}
    for knob in plan["knobs"]:
        seeds = finished_seeds(runs, knob) & reference_seeds
        mean, reference = means(runs, knob, seeds), means(runs, REFERENCE, seeds)
        gain = None if mean is None or reference is None else round(mean - reference, 4)
        knobs[knob] = {"seeds": sorted(seeds), "mean": mean, "reference_mean": reference, "gain": gain,
                       "adopted": gain is not None and gain >= plan["margin"] - 1e-9}
    adopted = [k for k, v in knobs.items() if v["adopted"]]
    final = {}
    for knob in adopted:
        final = merge(final, plan["knobs"][knob])
    return {"knobs": knobs, "adopted": adopted, "final_keys": merge(plan["reference"], final)}


def summarise(runs: list[Run], config: str) -> dict:
    scores = [r.result["score"] for r in runs if r.config == config and r.result]
    return {"seeds": [r.seed for r in runs if r.config == config and r.result], "scores": scores,
            "mean": round(float(np.mean(scores)), 4) if scores else None,
            "spread": round(float(np.ptp(scores)), 4) if scores else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plan", type=Path, required=True, help="JSON: seeds, margin, reference keys, knobs' keys")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scenes-train", type=Path, nargs="+", required=True, help="one arrays file per folder")
    parser.add_argument("--choose-on", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=Path("runs/study"))
    parser.add_argument("--parallel", type=int, default=1, help="runs at once")
    parser.add_argument("--budget", type=float, default=3600, help="seconds; runs still going after it are stopped")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="bf16")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    deadline = time.monotonic() + args.budget
    plan = json.loads(args.plan.read_text())
    choose_on = load_scene_faces(args.choose_on, None)
    configs = {REFERENCE: plan["reference"]} | {k: merge(plan["reference"], v) for k, v in plan["knobs"].items()}
    runs = [Run(c, s, keys, args.out) for s in plan["seeds"] for c, keys in configs.items()]
    execute(unfinished(runs), args, deadline, choose_on)
    decision = decide(plan, runs)
    final = next((c for c, keys in configs.items() if keys == decision["final_keys"]), None)
    if final is None:
        final = "final"
        extra = [Run(final, s, decision["final_keys"], args.out) for s in plan["seeds"]]
        execute(unfinished(extra), args, deadline, choose_on)
        runs += extra
    scored = [r for r in runs if r.config == final and r.result]
    candidate = max(scored, key=lambda r: (r.result["score"], -r.seed), default=None)
    summary = {
        "plan": plan, "decision": decision, "final_config": final,
        "candidate": candidate and candidate.name,
        "configs": {c: summarise(runs, c) for c in dict.fromkeys(r.config for r in runs)},
        "runs": [{"name": r.name, "config": r.config, "seed": r.seed, "wall_seconds": round(r.seconds),
                  "result": r.result} for r in runs],
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    models = args.out / "models"
    models.mkdir(exist_ok=True)
    for run in (r for r in scored if (r.folder / "mask_cnn.keras").exists()):
        shutil.copy(run.folder / "mask_cnn.keras", models / f"{run.name}.keras")
        shutil.copy(run.folder / "mask_cnn.json", models / f"{run.name}.json")
    log.info("final config %s, candidate %s; %s", final, summary["candidate"], json.dumps(summary["configs"]))


if __name__ == "__main__":
    main()
