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
def build_at(rev: str | None) -> Iterator[Path | None]:
    """A temporary export of the tree at `rev`, or None when no baseline was asked for."""
    if rev is None:
        yield None
        return
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="baseline-build-") as tmp:
        tarfile.open(fileobj=io.BytesIO(archive.stdout)).extractall(tmp, filter="data")
        yield Path(tmp)


def add_baseline_option(parser) -> None:
    parser.add_argument("--baseline", metavar="REV", help="also measure the build at this git revision, same run")
