"""A load generator: clients that post photos to a server for a time or a count of requests."""

import itertools
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import requests


@dataclass
class LoadResult:
    latencies_ms: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)  # seconds from the start, one per failure
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + len(self.failures)

    def summary(self) -> str:
        p50, p95 = np.percentile(self.latencies_ms, [50, 95])
        return (f"{self.requests} requests in {self.seconds:.0f} s, {len(self.failures)} failed "
                f"({len(self.failures) / max(1, self.requests):.2%}); p50 {p50:.0f} ms, p95 {p95:.0f} ms, "
                f"{len(self.latencies_ms) / self.seconds:.1f} requests/s")


def run_load(url: str, photos: list[bytes], clients: int, seconds: float | None = None,
             total: int | None = None, during=None, route: str = "/api/detect") -> LoadResult:
    """`clients` threads post photos to `route` until `seconds` pass or `total` requests are done; `during` runs
    alongside.

    At least one bound is required, and `total=0` means no requests: a fast machine must never turn a bound
    into "no bound".
    """
    if seconds is None and total is None:
        raise ValueError("run_load needs seconds, total or both")
    result, lock, counter = LoadResult(), threading.Lock(), itertools.count()
    start = time.monotonic()

    def client(offset: int) -> None:
        session = requests.Session()
        for i in itertools.count(offset):
            n = next(counter)
            if (seconds is not None and time.monotonic() - start > seconds) or (total is not None and n >= total):
                return
            sent = time.monotonic()
            try:
                response = session.post(f"{url}{route}", data=photos[i % len(photos)],
                                        headers={"Content-Type": "image/jpeg"}, timeout=60)
                ok = response.status_code == 200 and "faces" in response.json()
                outcome = None if ok else f"{response.status_code}: {response.text[:100]}"
            except requests.RequestException as exc:
                outcome = exc.__class__.__name__
                session = requests.Session()
            with lock:
                if outcome:
                    result.failures.append(outcome)
                    result.failure_times.append(sent - start)
                else:
                    result.latencies_ms.append((time.monotonic() - sent) * 1000)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    if during:
        during()
    for t in threads:
        t.join()
    result.seconds = time.monotonic() - start
    return result
