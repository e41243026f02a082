"""End to end in a real browser: Debian's chromium + chromedriver (Selenium, headless) against a real
uvicorn on 127.0.0.1.  A rater answers a whole session by clicking and by keyboard; the owner page
then shows those votes.  Screenshots of each page go to $GANWORKS_TURING_SCREENSHOTS (else tmp)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
CHROMEDRIVER = "/usr/bin/chromedriver"
if not (os.path.exists(CHROMEDRIVER) and (shutil.which("chromium") or shutil.which("chromium-browser"))):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "browser-test-owner-token"


@pytest.fixture
def server(make_study, serve):
    study = make_study("e2e", feedback=False, tutorial=2, attention=1, per_session=6)
    base, _ = serve(study, "--token", TOKEN)
    return base, study


@pytest.fixture
def browser():
    opts = Options()
    for a in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=900,900",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
    ):
        opts.add_argument(a)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    opts.binary_location = binary
    drv = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    drv.set_page_load_timeout(30)
    try:
        yield drv
    finally:
        drv.quit()


@pytest.mark.slow
def test_rater_clicks_and_keys_then_owner_sees_the_votes(server, browser, tmp_path):
    base, study_dir = server
    shots = Path(os.environ.get("GANWORKS_TURING_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    manifest = json.loads((study_dir / "study.json").read_text())["images"]
    wait = WebDriverWait(browser, 20)
    d = browser
    d.get(f"{base}/study/e2e?PROLIFIC_PID=worker-e2e")
    wait.until(EC.visibility_of_element_located((By.ID, "start")))
    intro = d.find_element(By.ID, "intro").text
    # what the worker is told: how many images (2 practice + 6 rated + 1 check) and about how long
    assert "You will see 9 images" in intro and "which takes about 1 minute" in intro, intro
    assert "The first 2 images are practice" in intro and "Then come 7 images to rate" in intro, intro
    # every key that answers is named on the page (R, G and the arrows; F answers nothing)
    page = d.find_element(By.TAG_NAME, "body").text
    assert all(k in page for k in ("R", "G", "←", "→")) and "F" not in [
        x.text for x in d.find_elements(By.TAG_NAME, "kbd")
    ]
    d.find_element(By.ID, "start").click()

    answered, k, took_feedback_shot, practice_seen = [], 0, False, set()
    expected = {"fake_votes": 0, "fake_fooled": 0, "real_votes": 0, "real_wrong": 0}
    while True:
        state = wait.until(
            lambda drv: drv.execute_script(
                "if (!document.getElementById('done').classList.contains('hidden')) return 'done';"
                "if (!document.getElementById('next').classList.contains('hidden')) return 'feedback';"
                "const b = document.getElementById('btn-real');"
                "return (!b.disabled && !document.getElementById('image').classList.contains('hidden')) ? 'ready' : false;"
            )
        )
        if state == "done":
            break
        if state == "feedback":
            if not took_feedback_shot:
                d.save_screenshot(str(shots / "feedback.png"))
                took_feedback_shot = True
            text = d.find_element(By.ID, "feedback").text
            assert "this image was" in text
            d.find_element(By.TAG_NAME, "body").send_keys(Keys.SPACE)  # continue by keyboard
            continue
        src_attr = d.execute_script("return document.getElementById('image').getAttribute('src')")
        iid = src_attr.rsplit("/", 1)[1]
        m = manifest[iid]
        tutorial = d.find_element(By.ID, "phase").text == "practice"
        n_tut = sum(1 for a in answered if a in practice_seen)
        counter = d.find_element(By.ID, "counter").text
        if tutorial:  # the counter counts as the intro did: 2 practice images, then 7 to rate
            practice_seen.add(iid)
            assert counter == f"practice image {n_tut + 1} of 2", counter
        else:
            assert counter == f"image {len(answered) - n_tut + 1} of 7", counter
        if k == 3:  # F is not an answer: nothing is sent, the same image stays
            d.find_element(By.TAG_NAME, "body").send_keys("f")
            time.sleep(0.3)
            assert d.execute_script("return document.getElementById('image').getAttribute('src')") == src_attr
            assert d.find_element(By.ID, "btn-real").is_enabled()
        # attention checks answered right; reals right; rated generated images called real on every other one,
        # starting with the first (the session's order is random: alternating by k alone can fool no one)
        if m["kind"] == "attention":
            ans = "fake"
        elif m["truth"] == "real":
            ans = "real"
        elif not tutorial and m["kind"] == "main":
            ans = "real" if expected["fake_votes"] % 2 == 0 else "fake"
        else:
            ans = "real" if k % 2 else "fake"
        if k == 2:
            d.save_screenshot(str(shots / "rater.png"))
        if k % 2 == 0:  # click
            d.find_element(By.ID, "btn-real" if ans == "real" else "btn-fake").click()
        else:  # keyboard: R / G, or the arrow keys
            key = (
                ("r" if ans == "real" else "g")
                if k % 4 == 1
                else (Keys.ARROW_LEFT if ans == "real" else Keys.ARROW_RIGHT)
            )
            d.find_element(By.TAG_NAME, "body").send_keys(key)
        answered.append(iid)
        if not tutorial and m["kind"] == "main":
            t = "fake" if m["truth"] == "fake" else "real"
            expected[f"{t}_votes"] += 1
            expected["fake_fooled" if t == "fake" else "real_wrong"] += ans != m["truth"]
        k += 1
        wait.until(
            lambda drv: drv.execute_script(  # the answer went through: a new image, feedback, or the end
                "return document.getElementById('image').getAttribute('src') !== arguments[0] || "
                "!document.getElementById('next').classList.contains('hidden') || "
                "!document.getElementById('done').classList.contains('hidden')",
                src_attr,
            )
        )
    code = d.find_element(By.ID, "code").text
    assert len(code) == 8
    assert "paste it into the study site" in d.find_element(By.ID, "done").text  # where the code goes
    d.save_screenshot(str(shots / "completion.png"))
    assert len(answered) == len(set(answered)) == 2 + 6 + 1
    assert took_feedback_shot

    # the same worker coming back gets the finished session and the same code
    d.get(f"{base}/study/e2e?PROLIFIC_PID=worker-e2e")
    wait.until(EC.visibility_of_element_located((By.ID, "code")))
    assert d.find_element(By.ID, "code").text == code

    d.get(f"{base}/owner/e2e?token={TOKEN}")
    wait.until(lambda drv: len(drv.find_elements(By.CSS_SELECTOR, "#sources tbody tr")) == 2)
    rows = [r.text for r in d.find_elements(By.CSS_SELECTOR, "#sources tbody tr")]
    assert f"of {len(answered)}." in d.find_element(By.ID, "summary").text
    real_row = next(r for r in rows if " real " in f" {r} " and "generated" not in r)
    fake_row = next(r for r in rows if "generated" in r)
    assert real_row.split()[2] == str(expected["real_votes"]) and fake_row.split()[2] == str(expected["fake_votes"])
    err_fakes = 100 * expected["fake_fooled"] / expected["fake_votes"]
    assert f"{err_fakes:.1f} %" in fake_row
    assert d.find_elements(By.CSS_SELECTOR, "#chart svg rect") and d.find_elements(By.CSS_SELECTOR, "#most img")
    d.execute_script("document.querySelector('details').open = true")
    d.set_window_size(1100, 1500)
    d.save_screenshot(str(shots / "owner.png"))

    # a wrong token is refused on the page
    d.get(f"{base}/owner/e2e?token=wrong")
    wait.until(EC.visibility_of_element_located((By.ID, "error")))
    assert "wrong owner token" in d.find_element(By.ID, "error").text


def _assert_worker_sentence(text: str) -> None:
    """What a crowd worker can act on: a sentence or two, no status code, no bare 'error'."""
    import re

    assert len(text) > 40 and text.rstrip().endswith("."), text
    assert not re.search(r"\b[1-5]\d\d\b", text), text
    assert not re.search(r"\berror\b", text, re.I), text
    assert "{" not in text and "detail" not in text, text


def _error_text(d, wait) -> str:
    wait.until(EC.visibility_of_element_located((By.ID, "error")))
    return d.find_element(By.ID, "error").text


def test_printed_rater_url_opens_as_printed(make_study, serve, browser):
    """The URL `ganworks turing serve` prints for raters starts a study when pasted as it is."""
    study = make_study("e2e", feedback=False, tutorial=2, attention=1, per_session=6)
    _, printed = serve(study, "--token", TOKEN)
    line = next(x for x in printed if x.startswith("raters:"))
    url = line.split()[1]
    wait = WebDriverWait(browser, 20)
    browser.get(url)
    wait.until(EC.visibility_of_element_located((By.ID, "start")))
    browser.find_element(By.ID, "start").click()
    wait.until(
        lambda drv: drv.execute_script(
            "return !document.getElementById('btn-real').disabled && "
            "!document.getElementById('image').classList.contains('hidden')"
        )
    )
    assert browser.find_element(By.ID, "error").get_attribute("class").split().count("hidden") == 1


@pytest.mark.slow
def test_every_error_state_of_the_rater_page_is_a_sentence(server, browser):
    base, _ = server
    d, wait = browser, WebDriverWait(browser, 20)
    # the printed form with its placeholder left in, and an id no platform makes
    d.get(f"{base}/study/e2e?PROLIFIC_PID=<id>")
    text = _error_text(d, wait)
    _assert_worker_sentence(text)
    assert "placeholder" in text
    d.get(f"{base}/study/e2e?PROLIFIC_PID=a/b")
    text = _error_text(d, wait)
    _assert_worker_sentence(text)
    assert "not valid" in text
    # an unknown study
    d.get(f"{base}/study/nope?PROLIFIC_PID=w-1")
    _assert_worker_sentence(_error_text(d, wait))
    # the same worker id from a browser without the session's cookie (another browser, or cookies cleared)
    d.get(f"{base}/study/e2e?PROLIFIC_PID=w-two")
    wait.until(EC.visibility_of_element_located((By.ID, "start")))
    d.execute_cdp_cmd("Network.clearBrowserCookies", {})
    d.get(f"{base}/study/e2e?PROLIFIC_PID=w-two")
    text = _error_text(d, wait)
    _assert_worker_sentence(text)
    assert "another browser" in text
    assert not d.find_element(By.ID, "code").text  # no completion code, no session
    # the cookie lost in the middle of a session: the vote cannot be stored, and the page says why
    d.get(f"{base}/study/e2e?PROLIFIC_PID=w-three")
    wait.until(EC.visibility_of_element_located((By.ID, "start")))
    d.find_element(By.ID, "start").click()
    wait.until(lambda drv: drv.execute_script("return !document.getElementById('btn-real').disabled"))
    d.execute_cdp_cmd("Network.clearBrowserCookies", {})
    d.find_element(By.ID, "btn-real").click()
    text = _error_text(d, wait)
    _assert_worker_sentence(text)
    assert "cookies" in text
    assert d.find_element(By.ID, "btn-real").get_attribute("disabled")  # no more clicks into a dead session
