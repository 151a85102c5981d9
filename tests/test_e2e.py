"""End to end: the real studio (launch(): Streamlit server + worker process) in headless Chromium.

A person's first visit: a wrong file first (a clear message), then a photo and a painting,
pick a small size, start, watch the picture change and its gallery entry follow it, reload the
page mid-run and find the job still going, stop and keep it, download the result and check it.
Then the gallery: a new tab of the same browser, opened on the bare address, finds it (the
cookie), another browser does not (unless given the me= link), a click on it opens it, and
Delete removes it with its files. Saves a screenshot (tmp_path, and $PAINTERLY_SCREENSHOT).

Skips without Playwright or /usr/bin/chromium, unless PAINTERLY_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from PIL import Image

from painterly.images import fit_size

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "images"
SIZE = 256  # output long side chosen in the page
STEPS = 300  # more than any machine makes before the test stops it: 30 finished before the reload on a fast one


def _require_browser():
    """The Playwright module, or skip (fail when PAINTERLY_REQUIRE_BROWSER=1)."""
    required = os.environ.get("PAINTERLY_REQUIRE_BROWSER") == "1"
    try:
        from playwright import sync_api
    except ImportError:
        (pytest.fail if required else pytest.skip)("playwright is not installed")
    if not CHROMIUM.is_file():
        (pytest.fail if required else pytest.skip)(f"{CHROMIUM} is missing (apt-get install chromium)")
    return sync_api


@pytest.fixture
def studio(tmp_path: Path, free_port: int, wait_serving) -> Iterator[str]:  # data in tmp_path/"data"
    """launch() in a child process on a free localhost port with a temporary data dir."""
    port, data = free_port, tmp_path / "data"
    log = open(tmp_path / "studio.log", "w")
    code = f"from painterly.app import launch; raise SystemExit(launch(port={port}, data_dir={str(data)!r}))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_serving(url, proc, tmp_path / "studio.log")
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: launch() stops the server and the worker
        try:
            assert proc.wait(30) == 0, (tmp_path / "studio.log").read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()


def _images(tmp_path: Path) -> tuple[Path, Path]:
    """A photo and a painting: the dev set's when present, else made here."""
    if (SHARED / "content_chelsea.jpg").is_file():
        return SHARED / "content_chelsea.jpg", SHARED / "style_starry_night.jpg"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:300, 0:450]
    photo = np.stack([xx / 450, yy / 300, 0.5 + 0.5 * np.sin(xx / 20)], -1)
    painting = np.stack([(xx // 15 + yy // 15) % 2, np.sin(yy / 7) * 0.5 + 0.5, rng.random((300, 450))], -1)
    paths = tmp_path / "photo.png", tmp_path / "painting.png"
    for arr, path in zip((photo, painting), paths):
        Image.fromarray((arr.clip(0, 1) * 255).astype(np.uint8)).save(path)
    return paths


def _settle(page) -> None:
    """Wait until the script run a widget change started has finished (Streamlit's status icon
    shows only after a moment, hence the pause first)."""
    page.wait_for_timeout(700)
    page.wait_for_function(
        "() => !document.querySelector("
        "'[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon]')"
    )


def _set_slider(page, label: str, target: str) -> None:
    """Move a (select) slider with the keyboard, as a person without a mouse would."""
    knob = page.locator(f'input[type=range][aria-label="{label}"]')
    # While a rerun is in flight the previous run's widgets can linger: wait for one.
    page.wait_for_function(
        'l => document.querySelectorAll(`input[type=range][aria-label="${l}"]`).length === 1', arg=label
    )
    knob.focus()
    for _ in range(40):
        now = knob.get_attribute("aria-valuetext")
        if now == target:
            return
        page.keyboard.press("ArrowRight" if float(now) < float(target) else "ArrowLeft")
    raise AssertionError(f"{label}: could not reach {target}, at {knob.get_attribute('aria-valuetext')}")


LIVE_IMAGE_JS = """() => {
    // The main area's image captioned "Step N": the live picture (the sidebar has thumbnails).
    const fig = [...document.querySelectorAll('[data-testid=stMain] [data-testid=stImage]')]
        .find(e => /^Step \\d+$/.test(e.innerText.trim()));
    return fig ? fig.querySelector('img').src : null;
}"""


def _live_src(page) -> str:
    """The URL of the live picture once the first painted image is shown (a content hash)."""
    return page.wait_for_function(LIVE_IMAGE_JS, timeout=90_000).json_value()


def _step(page) -> int:
    text = page.get_by_text(re.compile(r"^Step \d+ of \d+$")).first.inner_text(timeout=60_000)
    return int(text.split()[1])


SIDEBAR = '[data-testid="stSidebar"]'
VIEW = {"width": 1400, "height": 1000}


def _entry(page, job_id: str):
    """The sidebar's gallery entry of a job: a link to its page."""
    return page.locator(f'{SIDEBAR} a[href*="job={job_id}"]')


def test_studio_end_to_end(studio: str, tmp_path: Path) -> None:
    sync_api = _require_browser()
    photo, painting = _images(tmp_path)
    expected = fit_size(*Image.open(photo).size, SIZE)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEW, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(studio)
            page.get_by_text("Turn a photo into a painting").wait_for()
            uploads = page.locator('[data-testid="stFileUploader"] input[type=file]')
            uploads.first.wait_for(state="attached")
            # A file that is not a picture gets a one-line reason, and the page carries on.
            fake = tmp_path / "notes.png"
            fake.write_text("these are my shopping notes, not a picture")
            uploads.nth(0).set_input_files(str(fake))
            page.get_by_text("photo: not an image Pillow can read").wait_for()
            _settle(page)
            uploads.nth(0).set_input_files(str(photo))
            page.get_by_text(f"{Image.open(photo).size[0]} × {Image.open(photo).size[1]} px").wait_for()
            _settle(page)
            uploads.nth(1).set_input_files([str(painting)])
            # The instant preview, before any job, or the note that there is none here.
            page.get_by_text(re.compile("A rough sketch in a second|No instant preview")).first.wait_for()
            _settle(page)
            _set_slider(page, "Size (long side, pixels)", str(SIZE))
            _settle(page)
            _set_slider(page, "Steps", str(STEPS))
            page.get_by_text(f"for a {expected[0]} × {expected[1]} px picture, {STEPS} steps").wait_for()

            page.get_by_role("button", name="Paint it").click()
            page.wait_for_url(re.compile(r"[?&]job=[A-Za-z0-9_-]{16,}"))
            job_url = page.url
            job_id = re.search(r"job=([A-Za-z0-9_-]+)", job_url)[1]
            token = re.search(r"me=([A-Za-z0-9_-]+)", job_url)[1]
            # Its gallery entry follows the run: its status and progress, live.
            entry = _entry(page, job_id)
            percent = re.compile(r"Painting: (\d+) %")
            entry.get_by_text(percent).wait_for(timeout=90_000)
            first_percent = int(percent.search(entry.inner_text())[1])
            page.wait_for_function(
                """([id, n]) => { const a = document.querySelector(`[data-testid=stSidebar] a[href*="job=${id}"]`);
                    const m = a && a.innerText.match(/Painting: (\\d+) %|Stopped|Finished/);
                    return m && (!m[1] || +m[1] > n); }""",
                arg=[job_id, first_percent],
                timeout=90_000,
            )
            # Watch it form: once the first painted image replaces the photo shown at the start,
            # it changes again as the steps advance (image URLs are content hashes in Streamlit).
            first = _live_src(page)
            page.wait_for_function(
                f"src => {{ const now = ({LIVE_IMAGE_JS})(); return now && now !== src; }}", arg=first, timeout=90_000
            )
            before = _step(page)
            # A reload mid-run finds the job again (the id is in the URL) and it keeps going.
            page.reload()
            page.get_by_role("heading", name=re.compile("Painting")).wait_for()
            assert page.url == job_url
            page.wait_for_function(
                "n => [...document.querySelectorAll('p')]"
                ".some(p => { const m = p.innerText.match(/^Step (\\d+) of/); return m && +m[1] > n; })",
                arg=before,
                timeout=90_000,
            )
            # Stop and keep (if it has not finished by itself already).
            stop = page.get_by_role("button", name="Stop and keep")
            if stop.count():
                stop.click()
            page.get_by_text(re.compile(r"^Finished: ")).wait_for(timeout=90_000)

            with page.expect_download() as info:
                page.get_by_role("button", name="Download PNG").click()
            saved = tmp_path / "result.png"
            info.value.save_as(saved)
            with Image.open(saved) as result:
                assert result.format == "PNG" and result.size == expected
                assert np.asarray(result.convert("L")).std() > 1  # a picture, not a blank
            # It is in this browser's gallery, ended as asked.
            _entry(page, job_id).get_by_text(re.compile("Stopped at step|Finished in")).wait_for()

            shot = tmp_path / "studio.png"
            page.screenshot(path=str(shot), full_page=True)
            if os.environ.get("PAINTERLY_SCREENSHOT"):
                shutil.copyfile(shot, os.environ["PAINTERLY_SCREENSHOT"])

            # A fresh tab of the same browser, on the bare address (no link): the gallery is there.
            tab = context.new_page()
            tab.goto(studio)
            _entry(tab, job_id).wait_for()
            assert f"me={token}" in tab.url
            # Another browser (its own cookies) does not see it; given the me= link, it does.
            stranger = browser.new_context(viewport=VIEW).new_page()
            stranger.goto(studio)
            stranger.get_by_text("Your pictures appear here").wait_for()
            assert _entry(stranger, job_id).count() == 0 and f"me={token}" not in stranger.url
            stranger.goto(f"{studio}?me={token}")
            _entry(stranger, job_id).wait_for()

            # My pictures: a click on the picture opens it; Delete removes it and its files.
            tab.locator(SIDEBAR).get_by_role("button", name="My pictures").click()
            tab.get_by_role("heading", name="My pictures").wait_for()
            card = tab.locator(f'[data-testid=stMain] a[href*="job={job_id}"]')
            card.click()
            tab.get_by_text(re.compile(r"^Finished: ")).wait_for()
            assert f"job={job_id}" in tab.url
            tab.locator(SIDEBAR).get_by_role("button", name="My pictures").click()
            tab.get_by_role("heading", name="My pictures").wait_for()
            tab.get_by_role("button", name="Delete").click()
            tab.get_by_role("button", name="Delete for good").click()
            tab.get_by_text("No pictures yet").wait_for()
            assert not (tmp_path / "data" / "jobs" / job_id).exists()
            assert _entry(tab, job_id).count() == 0
        except Exception:
            # What the page showed when it went wrong, next to the studio's log.
            page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
