"""One ONNX Runtime session of a detector network, shared by every thread of a process."""

from pathlib import Path

import numpy as np
import onnxruntime as ort

from model.classifier import ModelLoadError

FRAME_PIXELS = 640 * 640  # inputs up to this size (webcam frames) leave their buffers in the arena for the next call


class OnnxSession:
    """Safe to call from many threads at once: it holds no input between calls.

    Its threads sleep instead of spinning between operators, so that requests on a busy server do not burn
    each other's CPU. Its buffers come from ONNX Runtime's arena, reused from call to call: without it every call
    maps and faults in fresh pages (the server's malloc returns any block over 1 MB, `web.malloc`), which undid
    the engine's gain for webcam frames, which come one size after another. An input larger than `FRAME_PIXELS`
    shrinks the arena back after its call. A session for photos, which come in every size, runs without the
    arena (`arena=False`): kept, each size's buffers stayed and a worker grew without bound; shrunk after every
    photo, the arena still held about 40 MB between calls (docs/log/2026-12-07-detector-centerface.md)."""

    def __init__(self, path: Path, arena: bool = True) -> None:
        if not path.is_file():
            raise ModelLoadError(f"face detector model not found: {path}")
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only
        options.enable_cpu_mem_arena = arena
        self._arena = arena
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime raises its own exception types for a file it cannot read
            raise ModelLoadError(f"face detector model is corrupt: {path} ({exc.__class__.__name__})") from exc
        self.input = self._session.get_inputs()[0].name
        self.outputs = [o.name for o in self._session.get_outputs()]
        self._give_back = ort.RunOptions()
        self._give_back.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, blob: np.ndarray) -> dict[str, np.ndarray]:
        """The network's outputs by name for one NCHW float32 input."""
        options = self._give_back if self._arena and blob.shape[2] * blob.shape[3] > FRAME_PIXELS else None
        return dict(zip(self.outputs, self._session.run(self.outputs, {self.input: blob}, options), strict=True))
