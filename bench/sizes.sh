#!/usr/bin/env bash
# Installed size of each requirements file, each in a fresh virtual environment.
#   bash bench/sizes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for reqs in requirements.txt requirements-lean.txt; do
  venv=$(mktemp -d)
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >/dev/null 2>&1
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$reqs: $(du -sm "$site" | cut -f1) MB installed ($(ls "$site" | grep -c dist-info) distributions)"
  rm -rf "$venv"
done
