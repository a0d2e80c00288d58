"""Whether gunicorn's --preload would save memory: the whole server with and without it, in turns, one run.

    python -m bench.preload [--rounds 2]

Two workers × 4 threads and 16 clients posting the fixture photos, as the load test runs them. Preloading loads
the app in the master and forks the workers from it, so they share its pages until they write to them. The sum
of RSS counts a shared page once per process; PSS divides it among them, so the sum of PSS is what the server
costs the machine. Both are taken idle, after 500 requests and after 2,000.
"""

import argparse

from harness.load import run_load
from harness.paths import FIXTURES, scene_photos
from harness.servers import run_gunicorn, server_pss_mb, server_rss_mb

SERVERS = {"preload off (gunicorn.conf.py)": {}, "--preload": {"GUNICORN_CMD_ARGS": "--preload"}}


def footprint_mb(process) -> tuple[float, float]:
    return server_rss_mb(process), server_pss_mb(process)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    photos = [p.read_bytes() for p, _ in scene_photos(FIXTURES / "scenes") if p.suffix == ".jpg"]
    print("| round | server | RSS / PSS idle | after 500 requests | after 2,000 | requests/s, 16 clients | failed |")
    print("|---|---|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        for name, env in SERVERS.items():
            with run_gunicorn({"WEB_CONCURRENCY": "2", **env}) as (url, process):
                idle = footprint_mb(process)
                warm = run_load(url, photos, 16, total=500, seconds=120)
                after_500 = footprint_mb(process)
                rest = run_load(url, photos, 16, total=1500, seconds=120)
                after_2000 = footprint_mb(process)
            cells = " | ".join(f"{rss:.0f} / {pss:.0f} MB" for rss, pss in (idle, after_500, after_2000))
            rps = len(rest.latencies_ms) / rest.seconds
            failures = len(warm.failures) + len(rest.failures)
            print(f"| {round_} | {name} | {cells} | {rps:.1f} | {failures} |", flush=True)


if __name__ == "__main__":
    main()
