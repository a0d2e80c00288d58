"""Serving figures through real gunicorn, in one run: this build with its int8 export (the default) and with its
float export, and with --baseline earlier builds (bench.baseline).

    python -m bench.serving --baseline aa37196       # the figures: 5 rounds of 6 s slices, beside aa37196's server
    python -m bench.serving --rounds 1 --seconds 1   # a check that it runs, in about a minute
    python -m bench.serving --variant eight-threads:GUNICORN_THREADS=8   # and this build under other settings

First the CNN's own time per face, in process, for each export. Then per server, one worker with the Procfile's
defaults (WEB_CONCURRENCY=1, 4 threads): latency of a 640×480 one-face JPEG sent as a webcam frame, through
`POST /api/detect?mode=frame` (sequential, median; a build without modes ignores the parameter and searches at its
one scale), and requests per second with 4 clients, each taken in turns with all servers up at once, with the
CPU time the server spent per request under that load (all its processes; the clients run in this process);
what this build's /metrics latency histogram counted of those requests; then RSS of the worker, its child
processes, and RSS of the whole server at WEB_CONCURRENCY=1 and 2. `--variant NAME:VAR=VALUE,…` adds this build's
int8 server with those environment variables, measured in the same turns.
"""

import argparse
import contextlib
import statistics
import time

import numpy as np
import psutil
import requests

from bench.baseline import add_baseline_option, builds_at
from bench.common import median_ms, one_face_jpeg_640x480
from harness.load import run_load
from harness.paths import ROOT
from harness.servers import cpu_seconds, metric_value, run_gunicorn, server_processes, server_rss_mb
from model.classifier import INT8_PATH, TFLITE_PATH, LiteClassifier
from model.detector import load_detector
from model.image_io import decode_image
from model.preprocess import crop, preprocess_face

INT8, FLOAT = "this build, int8 (served)", "this build, float"
FRAME, PHOTO = "/api/detect?mode=frame", "/api/detect"  # one detector scale, and the photo search at every scale
EXPORTS = {INT8: INT8_PATH, FLOAT: TFLITE_PATH}


def cnn_ms_per_face(jpeg: bytes, seconds: float) -> dict[str, float]:
    """The CNN alone on the frame's face, one invocation as the server makes it, median per export."""
    image = decode_image(jpeg)
    detections = load_detector().detect(image)
    assert len(detections) == 1, f"expected one face, found {len(detections)}"
    face = preprocess_face(crop(image, detections[0].box))[np.newaxis]
    classifiers = {name: LiteClassifier(path) for name, path in EXPORTS.items()}
    return {name: median_ms(lambda c=c: c.predict(face), repeats=500, seconds=seconds)
            for name, c in classifiers.items()}


def sequential_latency_ms(url: str, jpeg: bytes, repeats: int, seconds: float,
                          route: str = FRAME) -> tuple[float, int]:
    """Median over `repeats` requests or those sent in `seconds`, whichever ends first; and how many were sent."""
    session = requests.Session()
    times, deadline = [], time.monotonic() + seconds
    while len(times) < repeats and time.monotonic() < deadline:
        start = time.perf_counter()
        response = session.post(f"{url}{route}", data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30)
        response.raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), len(times)


def interleaved(servers: dict[str, tuple[str, object]], jpeg: bytes, rounds: int, seconds: float) -> dict[str, dict]:
    """Latency, 4-client throughput and CPU per request of every server (name: (URL, process)), taken in turns over
    `rounds`, medians per server.

    All servers are up at once and measured slice by slice, so that load from elsewhere on a shared machine
    falls on each of them alike instead of on whichever happened to run at the time.
    """
    sent = {name: run_load(url, [jpeg], clients=4, total=40, route=FRAME).requests
            for name, (url, _) in servers.items()}
    latency, rps, cpu = ({name: [] for name in servers} for _ in range(3))
    for _ in range(rounds):
        for name, (url, process) in servers.items():
            median, count = sequential_latency_ms(url, jpeg, repeats=30, seconds=seconds)
            latency[name].append(median)
            before = cpu_seconds(server_processes(process))
            load = run_load(url, [jpeg], clients=4, seconds=seconds, route=FRAME)
            assert not load.failures, load.failures[:3]
            rps[name].append(len(load.latencies_ms) / load.seconds)
            cpu[name].append((cpu_seconds(server_processes(process)) - before) * 1000 / len(load.latencies_ms))
            sent[name] += count + load.requests
    return {name: {"latency": statistics.median(latency[name]), "rps": statistics.median(rps[name]),
                   "rps_range": f"{min(rps[name]):.1f}–{max(rps[name]):.1f}", "cpu": statistics.median(cpu[name]),
                   "sent": sent[name]} for name in servers}


def variant(text: str) -> tuple[str, dict[str, str]]:
    """NAME:VAR=VALUE,VAR=VALUE → (NAME, {VAR: VALUE})."""
    name, _, assignments = text.partition(":")
    items = [item.split("=", 1) for item in assignments.split(",") if item]
    if not name or not items or any(len(item) != 2 for item in items):
        raise argparse.ArgumentTypeError(f"expected NAME:VAR=VALUE,…, got {text!r}")
    return f"this build, int8, {name}", dict(items)


def detect_requests_counted(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return metric_value(text, "mask_http_request_duration_seconds_count", method="POST", route="/api/detect",
                        status="200")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="turns of every server")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each latency and load slice")
    parser.add_argument("--variant", type=variant, action="append", default=[], metavar="NAME:VAR=VALUE,…",
                        help="this build's int8 server with these environment variables too")
    add_baseline_option(parser)
    args = parser.parse_args()
    jpeg = one_face_jpeg_640x480()
    cnn = cnn_ms_per_face(jpeg, seconds=max(2.0, 3 * args.seconds))
    with builds_at(args.baseline) as baselines, contextlib.ExitStack() as stack:
        builds = {name: (tree, {}) for name, tree in baselines.items()}
        builds.update({name: (ROOT, {"MODEL_PATH": str(path)}) for name, path in EXPORTS.items()})
        builds.update({name: (ROOT, env) for name, env in args.variant})
        processes = {name: stack.enter_context(run_gunicorn({**env, "WEB_CONCURRENCY": "1"}, cwd=build))
                     for name, (build, env) in builds.items()}
        rows = interleaved(processes, jpeg, args.rounds, args.seconds)
        for name, (url, process) in processes.items():
            worker = psutil.Process(process.pid).children()[0]
            rows[name].update(worker=worker.memory_info().rss / 2**20, server_1=server_rss_mb(process),
                              children=len(worker.children(recursive=True)))
            if name in EXPORTS:
                rows[name]["counted"] = detect_requests_counted(url)
        photo_ms, _ = sequential_latency_ms(processes[INT8][0], jpeg, repeats=30, seconds=3 * args.seconds, route=PHOTO)
        stack.close()
        for name, (build, env) in builds.items():
            with run_gunicorn({**env, "WEB_CONCURRENCY": "2"}, cwd=build) as (url, process):
                run_load(url, [jpeg], clients=4, total=200, seconds=10 * args.seconds, route=FRAME)
                rows[name]["server_2"] = server_rss_mb(process)

    print(f"CNN per face, one LiteRT invocation on one thread (median): int8 {cnn[INT8]:.2f} ms, float "
          f"{cnn[FLOAT]:.2f} ms; int8 / float {cnn[INT8] / cnn[FLOAT]:.2f}")
    print("| server | latency, median | requests/s, 4 clients, median (range) | server CPU per request, 4 clients | "
          "worker RSS | worker's child processes | server RSS, 1 worker | server RSS, 2 workers |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f in rows.items():
        print(f"| {name} | {f['latency']:.1f} ms | {f['rps']:.1f} ({f['rps_range']}) | {f['cpu']:.1f} ms | "
              f"{f['worker']:.0f} MB | {f['children']} | {f['server_1']:.0f} MB | {f['server_2']:.0f} MB |")
    served, exact = rows[INT8], rows[FLOAT]
    print(f"int8 server: latency {served['latency'] / cnn[FLOAT]:.2f}x the float CNN's time per face; against the "
          f"float server: latency {served['latency'] / exact['latency']:.2f}x, "
          f"requests/s {served['rps'] / exact['rps']:.2f}x")
    print(f"{INT8}: the same JPEG as a photo (POST {PHOTO}, every detector scale): {photo_ms:.1f} ms, median")
    for name in EXPORTS:
        print(f"{name}: /metrics latency histogram counted {rows[name]['counted']:.0f} of the "
              f"{rows[name]['sent']} POST /api/detect sent")
    for baseline in [*baselines, *(name for name, _ in args.variant)]:
        base = rows[baseline]
        print(f"int8 server / {baseline}: latency {served['latency'] / base['latency']:.2f}x, "
              f"requests/s {served['rps'] / base['rps']:.2f}x, CPU per request {served['cpu'] / base['cpu']:.2f}x, "
              f"worker RSS {served['worker'] / base['worker']:.2f}x")


if __name__ == "__main__":
    main()
