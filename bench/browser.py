"""Webcam frames per second in real headless Chromium, beside an earlier build, and the README's screenshots.

    python -m bench.browser --baseline REV…  # the figures, then the screenshots
    python -m bench.browser --screenshots     # the screenshots alone (docs/upload.png, upload-phone.png, webcam.png)

Chromium's fake camera plays a 30 fps, 1280×720 video made from a real one-face photo; each server serves its
own page, which sends frames 480 px wide. The figure is the page's own "Frames per second" (answers in the last
second) read once a second for 20 s after a 5 s warm-up, for the baseline build's server (bench.baseline) and
then this build's, one worker each with the Procfile's defaults, in the same run.
"""

import argparse
import re
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, expect, sync_playwright

from bench.baseline import add_baseline_option, builds_at
from bench.common import ONE_FACE_PHOTO
from harness.browser import launch_chromium
from harness.images import crowd_mosaic, encode, write_y4m
from harness.paths import ROOT
from harness.servers import run_gunicorn
from model.image_io import decode_image

DOCS = ROOT / "docs"


def started_webcam(browser: Browser, url: str):
    """A context and its webcam page, camera started and the first boxes drawn."""
    context = browser.new_context(permissions=["camera"], viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.goto(url + "/webcam")
    page.click("#start")
    expect(page.locator("#overlay")).to_have_attribute("data-boxes", re.compile("[1-9]"), timeout=20_000)
    return context, page


def webcam_page(browser: Browser, tree: Path, screenshots: bool) -> tuple[list[int], list[int]]:
    """The page's frames per second and round trips (ms), once a second for 20 s, against the server in `tree`."""
    with run_gunicorn({"WEB_CONCURRENCY": "1"}, cwd=tree) as (url, _):
        context, page = started_webcam(browser, url)
        page.wait_for_timeout(5000)
        fps, latency = [], []
        for _ in range(20):
            page.wait_for_timeout(1000)
            fps.append(int(page.inner_text("#fps")))
            latency.append(int(page.inner_text("#latency").split()[0]))
        if screenshots:
            page.screenshot(path=DOCS / "webcam.png")
            photo_screenshots(context.browser, url)
        context.close()
    return fps, latency


def webcam_screenshot(browser: Browser) -> None:
    with run_gunicorn({"WEB_CONCURRENCY": "1"}) as (url, _):
        context, page = started_webcam(browser, url)
        page.wait_for_timeout(3000)
        page.screenshot(path=DOCS / "webcam.png")
        context.close()
        photo_screenshots(browser, url)


def photo_screenshots(browser: Browser, url: str) -> None:
    """The crowd (harness.images.crowd_mosaic) on the photo page at 1280 px, and at 390 px fitted and larger."""
    with tempfile.TemporaryDirectory() as tmp:
        crowd = Path(tmp) / "crowd.jpg"
        crowd.write_bytes(encode(crowd_mosaic(), "JPEG", quality=90))
        for width, name in ((1280, "upload.png"), (390, "upload-phone.png")):
            context = browser.new_context(viewport={"width": width, "height": 900},
                                          device_scale_factor=2 if width < 600 else 1)
            page = context.new_page()
            page.goto(url + "/")
            page.set_input_files("#file-input", [str(crowd)])
            expect(page.locator("#status")).to_have_text(re.compile("Done"), timeout=60_000)
            page.locator(".face-line[data-face='7']").click()  # a selected pair: box and line highlighted
            page.locator(".face-line[data-face='7']").blur()
            page.mouse.move(0, 0)
            page.locator(".result").screenshot(path=DOCS / name)
            if width < 600:
                page.locator(".zoom").click()
                page.wait_for_timeout(500)
                page.locator(".photo-frame").screenshot(path=DOCS / "upload-phone-larger.png")
            context.close()
    print(f"screenshots in {DOCS}: upload.png, upload-phone.png, upload-phone-larger.png, webcam.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screenshots", action="store_true", help="only the screenshots, no figures")
    add_baseline_option(parser)
    args = parser.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        video = write_y4m(decode_image(ONE_FACE_PHOTO.read_bytes()), Path(tmp) / "face.y4m", size=(1280, 720))
        browser = launch_chromium(p, video)
        if args.screenshots:
            webcam_screenshot(browser)
            browser.close()
            return
        with builds_at(args.baseline) as baselines:
            for name, tree in baselines.items():
                runs[name] = webcam_page(browser, tree, screenshots=False)
        runs["this build"] = webcam_page(browser, ROOT, screenshots=True)
        browser.close()
    print("webcam page, 30 fps 1280x720 fake camera, frames sent 480 px wide:")
    print("| server | frames per second shown by the page: median (min–max) | round trip shown by the page, median |")
    print("|---|---|---|")
    for name, (fps, latency) in runs.items():
        print(f"| {name} | {statistics.median(fps)} ({min(fps)}–{max(fps)}) | {statistics.median(latency)} ms |")


if __name__ == "__main__":
    main()
