"""End to end in real headless Chromium (Debian's package, driven by Playwright) against the served app."""

import re
from pathlib import Path

import pytest

from model.image_io import decode_image
from tests.support import CHROMIUM, launch_chromium, serve_in_thread, write_y4m

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(app):
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def camera_video(one_face_photo, tmp_path_factory) -> Path:
    return write_y4m(decode_image(one_face_photo[0].read_bytes()), tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture(scope="module")
def browser(camera_video):
    with playwright_api.sync_playwright() as p:
        browser = launch_chromium(p, camera_video, ["--host-resolver-rules=MAP insecure.test 127.0.0.1"])
        yield browser
        browser.close()


def test_upload_shows_boxes_labels_and_summary(browser, base_url, one_face_photo, group_photo):
    page = browser.new_page()
    page.goto(base_url + "/")
    page.set_input_files("#file-input", [str(one_face_photo[0]), str(group_photo[0])])
    results = page.locator(".result")
    playwright_api.expect(results).to_have_count(2)
    playwright_api.expect(page.locator("#status")).to_have_text(re.compile("Done: 2 photos"), timeout=30_000)
    group = results.nth(0)  # newest first
    playwright_api.expect(group.locator(".summary")).to_have_text(re.compile(r"\d+ faces: \d+ with mask, \d+ without"))
    assert group.locator(".faces li").count() >= 3
    single = results.nth(1)
    playwright_api.expect(single.locator(".summary")).to_have_text(re.compile(r"1 face: [01] with mask, [01] without"))
    playwright_api.expect(single.locator(".faces li")).to_have_text(re.compile(r"Face 1: (Mask|No mask) \(\d+% confident\)"))
    image = single.locator(".result-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0
    assert single.locator(".download").get_attribute("href").startswith("data:image/jpeg;base64,")
    page.close()


def test_upload_of_a_non_image_shows_the_error(browser, base_url, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    page = browser.new_page()
    page.goto(base_url + "/")
    page.set_input_files("#file-input", str(text))
    playwright_api.expect(page.locator(".result.error .summary")).to_have_text("The file is not a readable image.")
    page.close()


def test_webcam_draws_boxes_and_shows_frames_per_second(browser, base_url):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#overlay")).to_have_attribute("data-boxes", "1", timeout=20_000)
    playwright_api.expect(page.locator("#fps")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=10_000)
    playwright_api.expect(page.locator("#latency")).to_have_text(re.compile(r"^\d+ ms$"))
    playwright_api.expect(page.locator("#face-count")).to_have_text(re.compile("1 face"))
    # Something is painted on the overlay, where the face is.
    painted = page.evaluate(
        "() => { const c = document.getElementById('overlay');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"
    )
    assert painted > 100
    page.set_viewport_size({"width": 420, "height": 800})  # phone-sized: the overlay follows the video
    page.wait_for_timeout(500)
    sizes = page.evaluate(
        "() => [document.getElementById('video').getBoundingClientRect().width,"
        " document.getElementById('overlay').getBoundingClientRect().width]"
    )
    assert sizes[0] == sizes[1] and sizes[0] <= 420
    page.click("#stop")
    playwright_api.expect(page.locator("#fps")).to_have_text("–")
    context.close()


def test_webcam_permission_denied_message(browser, base_url):
    context = browser.new_context()  # no camera permission: Chromium denies the request
    page = context.new_page()
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#message")).to_have_text(re.compile("Camera permission was denied"))
    context.close()


def test_webcam_needs_a_secure_page(browser, base_url):
    page = browser.new_page()
    page.goto(base_url.replace("127.0.0.1", "insecure.test") + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#message")).to_have_text(re.compile("HTTPS or on localhost"))
    page.close()
