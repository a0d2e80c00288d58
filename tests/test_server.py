"""Real gunicorn on 127.0.0.1 with the real model: start-up, logs, metrics summed over workers, faults and
shutdown. Hostile input against it: tests/test_hostile.py."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from config import Settings
from harness.paths import ROOT
from harness.servers import WORKER_READY, free_port, metric_value, run_gunicorn, wait_ready
from tests.support import STALE_METRICS, largest, post, workers


def test_serves_detections_and_logs_one_structured_line_without_image_bytes(server, one_face_photo):
    url, log_path = server.url, server.log_path
    data = one_face_photo[0].read_bytes()
    response = post(url, data)
    assert response.status_code == 200 and len(response.json()["faces"]) == 1
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    time.sleep(0.5)
    log_text = log_path.read_text(errors="replace")
    entries = [json.loads(line.split("access: ", 1)[1]) for line in log_text.splitlines() if "access: {" in line]
    detect = [e for e in entries if e["path"] == "/api/detect"][-1]
    assert detect["method"] == "POST" and detect["status"] == 200 and detect["faces"] == 1
    assert detect["duration_ms"] > 0
    assert "JFIF" not in log_text and "Exif" not in log_text


def test_each_worker_logs_a_ready_line_with_its_pid(server):
    """run_gunicorn waits for these lines, so that load starts only once every worker can take connections."""
    process, log_path = server.process, server.log_path
    ready = {int(pid) for pid in WORKER_READY.findall(log_path.read_text(errors="replace"))}
    assert len(workers(process)) == 2 and workers(process) <= ready


def test_no_control_socket_is_opened(server):
    log_path = server.log_path
    assert "Control socket" not in log_path.read_text(errors="replace")


def requests_counted(metrics_text: str, route: str) -> float:
    """GET `route`'s 200s in Prometheus text: the count of its latency histogram, which its +Inf bucket matches."""
    labels = {"method": "GET", "route": route, "status": "200"}
    count = metric_value(metrics_text, "mask_http_request_duration_seconds_count", **labels)
    assert metric_value(metrics_text, "mask_http_request_duration_seconds_bucket", **labels, le="+Inf") == count
    return count


def counted_by_each_worker(metrics_dir, route: str) -> dict[int, float]:
    """Each worker's own count of `route`, read from its files alone (gunicorn's /metrics sums them all)."""
    by_pid = {}
    for path in metrics_dir.glob("histogram_*.db"):
        registry = CollectorRegistry()
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            MultiProcessCollector(registry, path=alone)
            by_pid[int(path.stem.split("_")[-1])] = requests_counted(generate_latest(registry).decode(), route)
    return by_pid


def test_metrics_sum_every_workers_requests(server):
    metrics_dir = server.metrics_dir
    url, process = server.url, server.process
    assert not (metrics_dir / STALE_METRICS).exists()  # emptied at start: no earlier run is summed in
    before = requests_counted(requests.get(f"{url}/metrics", timeout=10).text, "/api/model")
    sent, deadline = 0, time.monotonic() + 30
    with ThreadPoolExecutor(4) as pool:  # a fresh connection per request: each may land on either worker
        while sent < 400 and time.monotonic() < deadline:
            assert all(s == 200 for s in pool.map(lambda _: requests.get(f"{url}/api/model", timeout=10).status_code,
                                                  range(20)))
            sent += 20
            by_worker = counted_by_each_worker(metrics_dir, "/api/model")
            if len([n for pid, n in by_worker.items() if pid in workers(process) and n > 0]) == 2:
                break
    assert len([n for pid, n in by_worker.items() if pid in workers(process) and n > 0]) == 2, by_worker
    served = requests.get(f"{url}/metrics", timeout=10)
    assert served.headers["Content-Type"].startswith("text/plain")
    assert requests_counted(served.text, "/api/model") == before + sent == sum(by_worker.values())


def test_a_killed_worker_is_replaced(server, one_face_photo):
    url, process = server.url, server.process
    before = workers(process)
    victim = sorted(before)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (victim in workers(process) or len(workers(process)) < len(before)):
        time.sleep(0.5)
    assert victim not in workers(process) and len(workers(process)) == len(before)
    wait_ready(url)
    assert post(url, one_face_photo[0].read_bytes()).status_code == 200


def test_sigterm_lets_the_requests_in_flight_finish(tmp_path):
    with run_gunicorn({}, tmp_path / "server.log") as (url, process):
        width, _, data = largest("16-bit RGB PNG", Settings())
        answers = []

        def upload() -> None:
            response = requests.post(f"{url}/api/detect?annotate=1", data=data,
                                     headers={"Content-Type": "image/png"}, timeout=120)
            answers.append((response, time.monotonic()))

        uploading = threading.Thread(target=upload)
        uploading.start()
        time.sleep(0.3)  # decoding and annotating this many pixels takes seconds
        terminated_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        uploading.join(timeout=120)
        assert process.wait(timeout=60) == 0
    response, answered_at = answers[0]
    assert response.status_code == 200 and response.json()["width"] == width
    assert answered_at > terminated_at  # it was in flight when the signal came


@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_missing_or_corrupt_detector_file_refuses_to_start(tmp_path, damage):
    """The app's tree copied, CenterFace's file damaged there: the server stops before it forks, naming the file."""
    tree = tmp_path / "app"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".*", "tests", "docs", "runs", "bench", "training"))
    detector_file = tree / "model" / "centerface.onnx"
    if damage == "missing":
        detector_file.unlink()
    else:
        detector_file.write_bytes(detector_file.read_bytes()[:100_000])
    env = {**os.environ, "PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "app:app"], cwd=tree, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(detector_file) in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage"])
def test_missing_or_corrupt_model_refuses_to_start(tmp_path, damage):
    model = tmp_path / "mask_cnn.keras"
    if damage == "truncated":
        model.write_bytes((ROOT / "model" / "mask_cnn.keras").read_bytes()[:50_000])
    elif damage == "garbage":
        model.write_bytes(os.urandom(100_000))
    env = {**os.environ, "PORT": str(free_port()), "MODEL_PATH": str(model)}
    result = subprocess.run([sys.executable, "-m", "gunicorn", "app:app"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(model) in errors[0], result.stderr
    assert "Traceback" not in result.stderr
