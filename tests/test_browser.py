"""End to end in real headless Chromium (Debian's package, driven by Playwright) against the served app."""

import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from app import create_app
from config import Settings
from harness.browser import CHROMIUM, launch_chromium
from harness.images import encode, write_y4m
from harness.servers import serve_in_thread
from model.image_io import decode_image

playwright_api = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium)", allow_module_level=True)


def is_detect(url: str) -> bool:
    return urlsplit(url).path == "/api/detect"


@pytest.fixture(scope="module")
def base_url(app):
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def refusing_url():
    """The real app with an upload limit below any camera frame: every frame is answered 413."""
    with serve_in_thread(create_app(Settings(max_upload_bytes=1000))) as url:
        yield url


@pytest.fixture(scope="module")
def camera_video(one_face_photo, tmp_path_factory) -> Path:
    return write_y4m(decode_image(one_face_photo[0].read_bytes()), tmp_path_factory.mktemp("camera") / "face.y4m")


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright, camera_video):
    browser = launch_chromium(playwright, camera_video, ["--host-resolver-rules=MAP insecure.test 127.0.0.1"])
    yield browser
    browser.close()


def test_upload_shows_boxes_labels_and_summary_in_the_order_chosen(browser, base_url, one_face_photo, group_photo):
    page = browser.new_page()
    page.goto(base_url + "/")
    page.set_input_files("#file-input", [str(one_face_photo[0]), str(group_photo[0])])
    results = page.locator(".result")
    playwright_api.expect(results).to_have_count(2)
    playwright_api.expect(page.locator("#status")).to_have_text("Done: 2 photos analysed.", timeout=30_000)
    single, group = results.nth(0), results.nth(1)  # in the order chosen
    playwright_api.expect(single.locator(".result-name")).to_have_text(one_face_photo[0].name)
    playwright_api.expect(group.locator(".summary")).to_have_text(
        re.compile(r"^\d+ faces: \d+ without a mask, \d+ with$"))
    assert group.locator(".faces li").count() >= 3
    playwright_api.expect(single.locator(".summary")).to_have_text(
        re.compile(r"^1 face: [01] without a mask, [01] with$"))
    playwright_api.expect(single.locator(".faces li")).to_have_text(
        re.compile(r"Face 1: (Mask|No mask) \(\d+% confident\)"))
    playwright_api.expect(single.locator(".tag")).to_have_text(re.compile(r"^1 (Mask|No mask) \d+%$"))
    image = single.locator(".result-image")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0
    assert single.locator(".download").get_attribute("href").startswith("data:image/jpeg;base64,")
    page.close()


LAYOUT = """card => {
  const img = card.querySelector('.result-image').getBoundingClientRect();
  const rect = (el) => el.getBoundingClientRect();
  const marks = [...card.querySelectorAll('.mark')].map(rect);
  return [...card.querySelectorAll('.tag')].map((tag, i) => ({
    number: tag.dataset.face, text: tag.textContent, shown: getComputedStyle(tag).visibility === 'visible',
    font: parseFloat(getComputedStyle(tag).fontSize), tag: rect(tag).toJSON(), img: img.toJSON(),
    mark: marks[i].toJSON(), others: marks.filter((_, j) => j !== i).map((m) => m.toJSON()),
    line: card.querySelectorAll('.faces li')[i].textContent,
  }));
}"""


def overlap(a: dict, b: dict, margin: float = 0) -> bool:
    return (a["left"] < b["right"] + margin - 0.5 and b["left"] - margin < a["right"] - 0.5
            and a["top"] < b["bottom"] + margin - 0.5 and b["top"] - margin < a["bottom"] - 0.5)


def test_a_crowd_on_a_phone_is_numbered_readable_and_linked_both_ways(browser, base_url, crowd_photo):
    page = browser.new_page(viewport={"width": 390, "height": 844}, has_touch=True)
    page.goto(base_url + "/")
    page.set_input_files("#file-input", str(crowd_photo))
    playwright_api.expect(page.locator("#status")).to_have_text("Done: 1 photo analysed.", timeout=60_000)
    card = page.locator(".result")
    playwright_api.expect(card.locator(".summary")).to_have_text(re.compile(r"^\d{2} faces: \d+ without a mask"))
    tags = card.evaluate(LAYOUT)
    assert len(tags) >= 40
    shown = [t for t in tags if t["shown"]]
    assert len(shown) >= len(tags) // 2
    for t in tags:
        assert t["line"].startswith(f"Face {t['number']}: ")
    for t in shown:
        assert t["font"] >= 12  # readable on a phone
        assert t["text"].split()[0] == t["number"]
        img, tag = t["img"], t["tag"]
        assert img["left"] - 0.5 <= tag["left"] and tag["right"] <= img["right"] + 0.5, t  # never cut off
        assert img["top"] - 0.5 <= tag["top"] and tag["bottom"] <= img["bottom"] + 0.5, t
        for other in t["others"]:
            if not overlap(other, t["mark"]):
                assert not overlap(tag, other), t
        for u in shown:
            assert u is t or not overlap(t["tag"], u["tag"]), (t, u)
    hidden = len(tags) - len(shown)
    if hidden:
        playwright_api.expect(card.locator(".crowded")).to_have_text(
            re.compile(f"^{hidden} of the numbers need more room"))
    # A tap on a list line selects its box, and its label shows in full; a tap on a box selects its line.
    unplaced = next((t for t in tags if not t["shown"]), tags[-1])
    number = unplaced["number"]
    card.locator(f".face-line[data-face='{number}']").tap()
    playwright_api.expect(card.locator(f".mark[data-face='{number}']")).to_have_class(re.compile("selected"))
    tag = card.locator(f".tag[data-face='{number}']")
    playwright_api.expect(tag).to_have_text(re.compile(rf"^{number} (Mask|No mask) \d+%$"))
    playwright_api.expect(tag).to_be_visible()
    card.locator(".mark[data-face='2']").tap()
    playwright_api.expect(card.locator(".faces li").nth(1)).to_have_class(re.compile("selected"))
    playwright_api.expect(card.locator(f".mark[data-face='{number}']")).not_to_have_class(re.compile("selected"))
    # Keyboard: the boxes are buttons in the tab order, with the list line's words.
    mark = card.locator(".mark[data-face='3']")
    mark.focus()
    page.keyboard.press("Enter")
    playwright_api.expect(card.locator(".faces li").nth(2)).to_have_class(re.compile("selected"))
    assert mark.get_attribute("aria-label") == card.locator(".faces li").nth(2).text_content()
    # The larger view doubles the photo and lays the labels out again: more of them find room.
    width = card.locator(".result-image").evaluate("img => img.clientWidth")
    card.locator(".zoom").tap()
    playwright_api.expect(card.locator(".zoom")).to_have_attribute("aria-pressed", "true")
    page.wait_for_function("w => document.querySelector('.result-image').clientWidth >= 1.9 * w", arg=width)
    page.wait_for_timeout(300)
    zoomed = card.evaluate(LAYOUT)
    assert sum(t["shown"] for t in zoomed) >= len(shown)
    page.close()


def test_a_48_megapixel_phone_heic_is_analysed_and_its_box_sits_on_the_face(browser, base_url):
    """The page cannot show HEIC itself outside Safari: it shows the server's annotated image, decoded at half size
    (tests/phone_photos/README.md: one face filling the frame's height, in the middle)."""
    page = browser.new_page()
    page.goto(base_url + "/")
    page.set_input_files("#file-input", str(Path(__file__).parent / "phone_photos" / "face-48mp.heic"))
    playwright_api.expect(page.locator("#status")).to_have_text("Done: 1 photo analysed.", timeout=60_000)
    card = page.locator(".result")
    summary = re.compile(r"^1 face: [01] without a mask, [01] with$")
    playwright_api.expect(card.locator(".summary")).to_have_text(summary)
    image, mark = card.locator(".result-image"), card.locator(".mark")
    assert image.evaluate("img => img.naturalWidth") == 4032
    shown, box = image.bounding_box(), mark.bounding_box()
    centre = (box["x"] + box["width"] / 2 - shown["x"]) / shown["width"]
    assert 0.35 < centre < 0.65 and box["height"] > shown["height"] / 3
    page.close()


def test_failed_photos_have_no_download_and_the_status_counts_them(browser, base_url, one_face_photo, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    page = browser.new_page()
    page.goto(base_url + "/")
    page.set_input_files("#file-input", [str(text), str(one_face_photo[0])])
    playwright_api.expect(page.locator("#status")).to_have_text("Done: 1 of 2 photos analysed, 1 failed.",
                                                                timeout=30_000)
    failed, done = page.locator(".result").nth(0), page.locator(".result").nth(1)
    playwright_api.expect(failed).to_have_class(re.compile("error"))
    playwright_api.expect(failed.locator(".download")).to_be_hidden()
    playwright_api.expect(failed.locator(".zoom")).to_be_hidden()
    playwright_api.expect(done.locator(".download")).to_be_visible()
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


def test_webcam_sends_each_camera_frame_once_with_at_most_two_in_flight(browser, base_url):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    outstanding: set = set()
    sent: list[float] = []
    most = 0
    modes: set[str] = set()

    def on_request(request) -> None:
        nonlocal most
        if is_detect(request.url):
            modes.update(parse_qs(urlsplit(request.url).query).get("mode", ["photo"]))
            outstanding.add(request)
            sent.append(time.monotonic())
            most = max(most, len(outstanding))

    page.on("request", on_request)
    page.on("requestfinished", lambda request: outstanding.discard(request))
    page.on("requestfailed", lambda request: outstanding.discard(request))
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#fps")).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=20_000)
    window_start = time.monotonic()
    page.wait_for_timeout(3000)
    in_window = [t for t in sent if window_start <= t <= time.monotonic()]
    page.click("#stop")
    context.close()
    assert 1 <= most <= 2
    assert modes == {"frame"}, "webcam frames must ask for the single-scale search"
    assert len(in_window) <= 3 * 30 + 3, f"{len(in_window)} frames in 3 s from a 30 fps camera: frames sent twice"


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


COUNT_ALERT_WRITES = """() => {
  window.alertWrites = 0;
  new MutationObserver((records) => { window.alertWrites += records.length; })
    .observe(document.getElementById('message'), { childList: true, characterData: true, subtree: true });
}"""


def test_a_failing_server_gets_one_retry_a_second_and_one_alert_even_across_a_camera_switch(browser, refusing_url):
    context = browser.new_context(permissions=["camera"])
    page = context.new_page()
    sent: list[float] = []
    page.on("request", lambda r: sent.append(time.monotonic()) if is_detect(r.url) else None)
    page.goto(refusing_url + "/webcam")
    page.click("#start")
    message = page.locator("#message")
    playwright_api.expect(message).to_have_text(re.compile("could not analyse the frame"), timeout=20_000)
    # Choosing a camera while the loop waits before its retry starts the camera again; the waiting loop must end.
    page.evaluate("() => document.getElementById('camera-select').dispatchEvent(new Event('change'))")
    playwright_api.expect(message).to_have_text(re.compile("could not analyse the frame"), timeout=20_000)
    page.wait_for_timeout(1500)
    page.evaluate(COUNT_ALERT_WRITES)
    window_start = time.monotonic()
    page.wait_for_timeout(4000)
    in_window = [t for t in sent if window_start <= t <= time.monotonic()]
    assert 2 <= len(in_window) <= 5, f"{len(in_window)} frames in 4 s: more than one loop is sending"
    assert page.evaluate("window.alertWrites") == 0  # the same failure is announced once, not every second
    page.click("#stop")
    context.close()


def test_a_video_that_will_not_play_gives_a_message_and_sends_nothing(browser, base_url):
    context = browser.new_context(permissions=["camera"])
    # A browser that refuses playback (an autoplay policy does this): play() rejects.
    context.add_init_script(
        "HTMLMediaElement.prototype.play = () => Promise.reject(new DOMException('refused', 'NotAllowedError'));"
    )
    page = context.new_page()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if is_detect(r.url) else None)
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#message")).to_have_text(re.compile(r"could not play \(NotAllowedError\)"))
    playwright_api.expect(page.locator("#start")).to_be_enabled()
    playwright_api.expect(page.locator("#stop")).to_be_disabled()
    page.wait_for_timeout(1000)
    assert sent == []
    context.close()


def test_no_face_advice_fits_each_page(playwright, base_url, tmp_path):
    """A camera that sees no face is told to face the camera, not to pick another photo; the photo page still is."""
    blank = np.full((480, 640, 3), 128, np.uint8)  # a covered lens
    (tmp_path / "blank.png").write_bytes(encode(blank, "PNG"))
    browser = launch_chromium(playwright, write_y4m(blank, tmp_path / "blank.y4m"))
    page = browser.new_context(permissions=["camera"]).new_page()
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#face-count")).to_have_text(re.compile("^No face in view"), timeout=20_000)
    page.goto(base_url + "/")
    page.set_input_files("#file-input", str(tmp_path / "blank.png"))
    playwright_api.expect(page.locator(".result .summary")).to_have_text(re.compile("Try a photo where"))
    browser.close()


@pytest.mark.parametrize("size", [(640, 480), (360, 640)], ids=["4:3", "portrait"])
def test_the_webcam_stage_takes_the_cameras_shape_and_mirrors_a_front_camera(playwright, base_url, one_face_photo,
                                                                              tmp_path, size):
    photo = decode_image(one_face_photo[0].read_bytes())
    shifted = np.zeros((photo.shape[0], photo.shape[1] * 2, 3), np.uint8)
    shifted[:, : photo.shape[1]] = photo  # the face in the left half of the frame
    browser = launch_chromium(playwright, write_y4m(shifted, tmp_path / "camera.y4m", size=size))
    page = browser.new_context(permissions=["camera"], viewport={"width": 1000, "height": 800}).new_page()
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#overlay")).to_have_attribute("data-boxes", "1", timeout=20_000)
    stage = page.locator(".stage").bounding_box()
    assert stage["width"] / stage["height"] == pytest.approx(size[0] / size[1], rel=0.02)  # no letterbox
    assert stage["height"] <= 0.75 * 800 + 1
    # A camera that does not say it faces away is mirrored: the video by CSS, the boxes where they are drawn.
    assert page.locator("#video").evaluate("v => getComputedStyle(v).transform") == "matrix(-1, 0, 0, 1, 0, 0)"
    assert page.locator("#overlay").evaluate("c => getComputedStyle(c).transform") == "none"  # text reads right
    painted_right = page.evaluate(
        "() => { const c = document.getElementById('overlay'); const d = c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data; let left = 0, right = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i]) { ((i >> 2) % c.width < c.width / 2) ? left++ : right++; }"
        " return [left, right]; }"
    )
    assert painted_right[1] > 3 * painted_right[0], painted_right  # the face is on the right once mirrored
    browser.close()


def test_a_camera_facing_away_is_not_mirrored(browser, base_url):
    context = browser.new_context(permissions=["camera"])
    context.add_init_script(
        "const get = MediaStreamTrack.prototype.getSettings;"
        "MediaStreamTrack.prototype.getSettings = function () {"
        " return { ...get.call(this), facingMode: 'environment' }; };"
    )
    page = context.new_page()
    page.goto(base_url + "/webcam")
    page.click("#start")
    playwright_api.expect(page.locator("#overlay")).to_have_attribute("data-boxes", "1", timeout=20_000)
    assert page.locator("#video").evaluate("v => getComputedStyle(v).transform") == "none"
    context.close()
