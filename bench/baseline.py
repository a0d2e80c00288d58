"""An earlier build of this project, exported from git, so that a benchmark measures it beside this build in the
same run (`--baseline REV` of bench.serving, bench.memory and bench.browser). It runs under this environment's
packages, so REV must share this build's serving requirements, and its gunicorn.conf.py must log each worker's
ready line (since 34f0554)."""

import contextlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from harness.paths import ROOT


@contextlib.contextmanager
def builds_at(revs: list[str]) -> Iterator[dict[str, Path]]:
    """Temporary exports of the tree at each of `revs`, by name ("build REV"); none when no baseline was asked for."""
    with tempfile.TemporaryDirectory(prefix="baseline-builds-") as tmp:
        trees = {}
        for rev in revs:
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
            tree = Path(tmp) / rev
            tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tree, filter="data")
            trees[f"build {rev}"] = tree
        yield trees


def add_baseline_option(parser) -> None:
    parser.add_argument("--baseline", metavar="REV", nargs="+", default=[],
                        help="also measure the build at each of these git revisions, same run")
