"""Debian's Chromium for Playwright, with the flags this machine's closed network needs."""

from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright, fake_video: Path | None = None, extra_args: list[str] | None = None):
    args = list(CHROMIUM_ARGS) + (extra_args or [])
    if fake_video:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_video}"]
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
