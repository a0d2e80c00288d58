"""Webcam frames per second in real headless Chromium, and the README's screenshots of both pages.

    python -m bench.browser

Chromium's fake camera plays a video made from a real one-face photo; the figure is the page's own
"Frames per second" read once a second for 20 s after a 5 s warm-up.
"""

import re
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from bench.common import ONE_FACE_PHOTO
from model.image_io import decode_image
from tests.support import DATASETS, ROOT, launch_chromium, run_gunicorn, write_y4m

GROUP_PHOTO = DATASETS / "scenes-dev" / "images" / "maksssksksss83.png"
DOCS = ROOT / "docs"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, run_gunicorn({"WEB_CONCURRENCY": "1"}) as (url, _), sync_playwright() as p:
        video = write_y4m(decode_image(ONE_FACE_PHOTO.read_bytes()), Path(tmp) / "face.y4m", size=(1280, 720))
        browser = launch_chromium(p, video)
        context = browser.new_context(permissions=["camera"], viewport={"width": 1000, "height": 900})
        page = context.new_page()
        page.goto(url + "/webcam")
        page.click("#start")
        expect(page.locator("#overlay")).to_have_attribute("data-boxes", re.compile("[1-9]"), timeout=20_000)
        page.wait_for_timeout(5000)
        fps, latency = [], []
        for _ in range(20):
            page.wait_for_timeout(1000)
            fps.append(int(page.inner_text("#fps")))
            latency.append(int(page.inner_text("#latency").split()[0]))
        page.screenshot(path=DOCS / "webcam.png")
        print("webcam page, 1280x720 camera, frames sent at 480 px wide, one request in flight:")
        print(f"  frames per second shown by the page: median {statistics.median(fps)}, min {min(fps)}, max {max(fps)}")
        print(f"  round trip shown by the page: median {statistics.median(latency)} ms")

        page = context.new_page()
        page.goto(url + "/")
        page.set_input_files("#file-input", [str(GROUP_PHOTO)])
        expect(page.locator("#status")).to_have_text(re.compile("Done"), timeout=30_000)
        page.screenshot(path=DOCS / "upload.png", full_page=True)
        print(f"screenshots: {DOCS / 'webcam.png'}, {DOCS / 'upload.png'}")
        browser.close()


if __name__ == "__main__":
    main()
