"""Serving figures through real gunicorn, default (Keras) and lean (LiteRT) mode in one run.

    python -m bench.serving

Per mode: latency of a 640×480 one-face JPEG (sequential, median), requests per second with 4 clients,
RSS of one worker after warm-up, and RSS of the whole server at WEB_CONCURRENCY=1 and 2.
"""

import statistics
import time

import psutil
import requests

from bench.common import one_face_jpeg_640x480
from tests.support import run_gunicorn, run_load, server_rss_mb

MODES = {"default (keras)": {"MODEL_RUNTIME": "keras"}, "lean (tflite)": {"MODEL_RUNTIME": "tflite"}}


def sequential_latency_ms(url: str, jpeg: bytes, repeats: int = 100) -> float:
    session = requests.Session()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = session.post(f"{url}/api/detect", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30)
        response.raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    jpeg = one_face_jpeg_640x480()
    rows = []
    for mode, env in MODES.items():
        with run_gunicorn({**env, "WEB_CONCURRENCY": "1"}) as (url, process):
            latency = sequential_latency_ms(url, jpeg)
            load = run_load(url, [jpeg], clients=4, seconds=20)
            assert not load.failures, load.failures[:3]
            worker = psutil.Process(process.pid).children()[0]
            worker_mb = worker.memory_info().rss / 2**20
            server_1 = server_rss_mb(process)
        with run_gunicorn({**env, "WEB_CONCURRENCY": "2"}) as (url, process):
            run_load(url, [jpeg], clients=4, total=200)
            server_2 = server_rss_mb(process)
        rows.append((mode, latency, len(load.latencies_ms) / load.seconds, worker_mb, server_1, server_2))

    print(f"{'mode':<17} {'latency p50':>12} {'req/s (4 cl.)':>14} {'worker RSS':>11} {'server x1':>10} {'server x2':>10}")
    for mode, latency, rps, worker_mb, server_1, server_2 in rows:
        print(f"{mode:<17} {latency:>9.1f} ms {rps:>14.1f} {worker_mb:>8.0f} MB {server_1:>7.0f} MB {server_2:>7.0f} MB")
    base, lean = rows
    print(f"lean / default: latency {lean[1] / base[1]:.2f}x, throughput {lean[2] / base[2]:.2f}x, "
          f"worker RSS {lean[3] / base[3]:.2f}x")


if __name__ == "__main__":
    main()
