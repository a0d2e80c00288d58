"""Settings come from the environment, with defaults that work when nothing is set."""

from pathlib import Path

from config import MB, ServerSettings, Settings
from model.classifier import INT8_PATH


def test_defaults_when_nothing_is_set():
    assert Settings.from_env({}) == Settings()
    assert Settings().max_upload_bytes == 10 * MB and Settings().max_pixels == 40_000_000
    assert Settings().model_path == INT8_PATH and Settings().metrics_dir is None  # the int8 export; one process
    assert ServerSettings.from_env({}) == ServerSettings(port=8000, workers=1, threads=4, timeout=60)


def test_values_are_read_from_the_environment():
    env = {"MODEL_PATH": "/models/m.tflite",
           "MAX_UPLOAD_MB": "5", "MAX_PIXELS": "1000", "LOG_LEVEL": "debug", "FLASK_DEBUG": "1",
           "PORT": "5000", "WEB_CONCURRENCY": "3", "GUNICORN_THREADS": "2", "GUNICORN_TIMEOUT": "30"}
    assert Settings.from_env(env) == Settings(Path("/models/m.tflite"), 5 * MB, 1000, "DEBUG", True)
    assert ServerSettings.from_env(env) == ServerSettings(5000, 3, 2, 30)
    assert Settings.from_env({"PROMETHEUS_MULTIPROC_DIR": "/run/metrics"}).metrics_dir == Path("/run/metrics")
    assert Settings.from_env({"DECODE_MEMORY_MB": "64", "DECODE_WAIT_SECONDS": "5"}).decode_memory_bytes == 64 * MB
    assert ServerSettings.from_env({"REQUEST_TIMEOUT": "9"}).request_timeout == 9
    assert ServerSettings.from_env({"PORT": " "}).port == 8000  # blank means unset
