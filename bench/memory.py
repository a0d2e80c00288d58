"""Server memory from 500 to 5,000 requests, and child processes: this build, and an earlier one in the same run.

    python -m bench.memory [--requests 5000] [--seconds 900] [--baseline REV [REV ...]]

One worker with the Procfile's defaults (WEB_CONCURRENCY=1, 4 threads) and 4 clients posting scenes-val's JPEG
photos, whose many sizes make the detector resize its network. RSS of the whole server (master, worker and
any child of it) after 500 requests and after `--requests`, or as many as `--seconds` allow. gunicorn's worker
recycling (max_requests) is off for the run, so that growth shows instead of being reset, and the worker must
be the same process at both points.
"""

import argparse
from pathlib import Path

import psutil

from bench.baseline import add_baseline_option, builds_at
from harness.load import run_load
from harness.paths import DATASETS, ROOT
from harness.servers import run_gunicorn, server_rss_mb

WARM = 500


def measure(tree: Path, photos: list[bytes], requests: int, seconds: float) -> str:
    """One markdown row's cells after the warm-up and the rest of the requests."""
    server_env = {"WEB_CONCURRENCY": "1", "GUNICORN_CMD_ARGS": "--max-requests 0"}
    with run_gunicorn(server_env, cwd=tree) as (url, process):
        warm = run_load(url, photos, clients=4, total=WARM, seconds=seconds)
        worker = psutil.Process(process.pid).children()[0]
        before, worker_before = server_rss_mb(process), worker.memory_info().rss / 2**20
        rest = run_load(url, photos, clients=4, total=requests - WARM, seconds=seconds)
        assert psutil.Process(process.pid).children() == [worker], "the worker was replaced during the run"
        after, worker_after = server_rss_mb(process), worker.memory_info().rss / 2**20
        children = len(worker.children(recursive=True))
    done, failed = warm.requests + rest.requests, len(warm.failures) + len(rest.failures)
    return (f"{before:.0f} MB | {after:.0f} MB | {after / before - 1:+.1%} | "
            f"{worker_before:.0f} → {worker_after:.0f} MB | {done} ({failed} failed) | {children} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=900, help="bound on each of the two load phases")
    parser.add_argument("--scenes", type=Path, default=DATASETS / "scenes-val")
    add_baseline_option(parser)
    args = parser.parse_args()
    photos = [p.read_bytes() for p in sorted((args.scenes / "images").glob("*.jpg"))]
    print(f"{len(photos)} JPEG photos from {args.scenes.name}; 4 clients; one worker, recycling off")
    print(f"| server | server RSS after {WARM} | after the last request | change | worker RSS | requests | "
          "worker's child processes at the end |")
    print("|---|---|---|---|---|---|---|")
    with builds_at(args.baseline) as baselines:
        servers = baselines | {"this build": ROOT}
        for name, build in servers.items():
            print(f"| {name} | {measure(build, photos, args.requests, args.seconds)}", flush=True)


if __name__ == "__main__":
    main()
