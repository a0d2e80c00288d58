#!/usr/bin/env bash
# Installed and compressed size of each requirements file, each in a fresh virtual environment.
#   bash bench/sizes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for reqs in requirements.txt requirements-train.txt; do
  venv=$(mktemp -d)
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$reqs" >/dev/null 2>&1
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  compressed=$(tar -C "$site" -czf - . | wc -c)
  echo "$reqs: $(du -sm "$site" | cut -f1) MB installed, $((compressed / 1048576)) MB gzip-compressed; largest:"
  du -sm "$site"/* | sort -rn | head -5 | sed "s|$site/|    |"
  rm -rf "$venv"
done
