"""Disk states and unexpected errors on the page (jobs/health.py, app/health.py, app/errors.py).

A full disk is simulated by raising the free-space floor over what the test's disk has (the real
thing, on a small tmpfs, is in test_full_disk.py); the pages run in Streamlit's AppTest against a
real JobStore.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from painterly.app import health as banner
from painterly.app.errors import message
from painterly.app.launcher import STATUS_ENV
from painterly.config import preset
from painterly.jobs import JobStore, WorkerInfo, health

MAIN = Path(__file__).resolve().parents[1] / "src" / "painterly" / "app" / "main.py"
TINY = dict(size=32, steps=4, scales=1, preview_every=1)
ERROR_ID = re.compile(r"error ([0-9a-f]{8})\.$")


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAINTERLY_HOME", str(tmp_path))
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "0")  # else its timing, process-wide, changes later tests' estimates
    monkeypatch.delenv(STATUS_ENV, raising=False)
    return tmp_path


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every disk looks full: the floor is above any real disk's free space."""
    monkeypatch.setattr(health, "MIN_FREE", 2**62)


def app(**params: str) -> AppTest:
    at = AppTest.from_file(str(MAIN), default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    return at.run()


def texts(at: AppTest, kind: str) -> list[str]:
    return [e.value for e in getattr(at, kind)]


# --- the disk's state -------------------------------------------------------------------------


def test_disk_states(tmp_path: Path, full_disk: None) -> None:
    assert health.disk_problem(tmp_path, min_free=0) is None
    assert health.disk_problem(tmp_path) == health.FULL
    assert health.disk_problem(tmp_path / "missing") is None  # not a disk state: the store says why
    assert health.disk_fault(OSError(errno.EROFS, "Read-only file system"))
    assert health.disk_fault(sqlite3.OperationalError("database or disk is full"))
    assert not health.disk_fault(sqlite3.OperationalError("database is locked"))
    e = health.as_os_error(sqlite3.OperationalError("attempt to write a readonly database"))
    assert e.errno == errno.EROFS and e.strerror == "the data folder is read-only" and e.filename is None


def test_a_full_disk_refuses_new_pictures_and_leaves_nothing(
    tmp_path: Path, content_img, style_img, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore(tmp_path / "data")
    cfg = preset("draft", **TINY)
    monkeypatch.setattr(health, "MIN_FREE", 2**62)
    with pytest.raises(OSError) as info:
        store.submit(png(content_img), [png(style_img)], cfg)
    assert info.value.errno == errno.ENOSPC and info.value.strerror == "the disk is full"
    monkeypatch.setattr(health, "MIN_FREE", 0)

    # SQLite's own words for a full disk, at the row's insert: the same OSError, no folder left.
    def full(self):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(JobStore, "_tx", full)
    with pytest.raises(OSError) as info:
        store.submit(png(content_img), [png(style_img)], cfg)
    assert info.value.errno == errno.ENOSPC
    assert not list((tmp_path / "data" / "jobs").iterdir())


# --- the banner and the refused submit, on the page -------------------------------------------


def test_full_disk_banner_and_submit_refused_with_a_message(home: Path, full_disk: None, content_img, style_img):
    at = app()
    assert not at.exception
    assert any(t.startswith("**The disk is full: new pictures are paused.**") for t in texts(at, "error"))
    at.file_uploader(key="content_upload").set_value(("photo.png", png(content_img), "image/png"))
    at.file_uploader(key="style_upload").set_value([("a.png", png(style_img), "image/png")])
    at.run()
    [b for b in at.button if b.label == "Paint it"][0].click().run()
    assert not at.exception and "job" not in at.query_params
    assert "The server could not store your pictures (the disk is full). Try again later." in texts(at, "error")
    assert not JobStore(home).list(at.query_params["me"][0] if isinstance(at.query_params["me"], list) else "x")


def test_banner_when_the_painter_keeps_stopping(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    status = home / "status.json"
    monkeypatch.setenv(STATUS_ENV, str(status))
    status.write_text(json.dumps({"workers": 1, "running": 0, "failing": True, "retry_at": time.time() + 20}))
    at = app()
    warning = [t for t in texts(at, "warning") if "keeps stopping" in t]
    assert warning and re.search(r"next try in (19|20) s", warning[0])
    status.write_text(json.dumps({"workers": 1, "running": 1, "failing": False}))
    at.run()
    assert not [t for t in texts(at, "warning") if "keeps stopping" in t]
    assert banner.lines(None, None) == [] and banner.lines(health.READ_ONLY, None)[0][1].startswith(
        "**The data folder is read-only: new pictures are paused.**"
    )


# --- no traceback on the page -----------------------------------------------------------------


def test_an_unexpected_error_is_one_line_with_an_id_and_the_traceback_is_logged(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self, *args, **kwargs):
        raise RuntimeError(f"boom in {home}/jobs.sqlite3")

    monkeypatch.setattr(JobStore, "list", broken)
    with caplog.at_level(logging.ERROR, logger="painterly.studio"):
        at = app()
    assert not at.exception
    # The gallery and the form's estimate both list jobs: each says so in its place, in one line.
    lines = [e for e in texts(at, "error") if "went wrong" in e]
    assert len(lines) == 2
    for line in lines:
        assert str(home) not in line and "boom" not in line and "\n" not in line
        error_id = ERROR_ID.search(line).group(1)
        logged = [r for r in caplog.records if error_id in r.getMessage()]
        assert logged and logged[0].exc_info and "boom in" in logged[0].getMessage()
    # What was drawn before each failure stays: the sidebar's button, the form's title.
    assert [b for b in at.button if b.label == "New picture"]
    assert "Turn a photo into a painting" in [t.value for t in at.title]
    # A disk fault says so (still without paths).
    assert "disk is full or read-only" in message(OSError(errno.ENOSPC, "No space", "/x"), "0123abcd")


def test_an_error_inside_the_live_fragment_is_one_line_too(
    home: Path, content_img, style_img, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore(home)
    owner = "a-browser-token-0009"
    job_id = store.submit(png(content_img), [png(style_img)], preset("draft", **TINY), owner=owner)
    store.claim(WorkerInfo.current(), lease=60)

    def broken(self, job_id):
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(JobStore, "loss_history", broken)
    at = app(job=job_id, me=owner)
    assert not at.exception
    assert [e for e in texts(at, "error") if ERROR_ID.search(e) and "went wrong" in e]


def test_a_running_picture_the_disk_holds_up_shows_paused_not_painting(
    home: Path, content_img, style_img, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tried by hand (RESULTS, issue 15): with the disk full, the worker cannot write and waits,
    # and the page said "Painting" with its clock running on and "Remaining" growing.
    store = JobStore(home)
    owner = "a-browser-token-0010"
    job_id = store.submit(png(content_img), [png(style_img)], preset("draft", **TINY), owner=owner)
    store.claim(WorkerInfo.current(), lease=60)
    at = app(job=job_id, me=owner)
    assert [s.value for s in at.subheader] == ["Painting"]  # the disk is fine
    monkeypatch.setattr(health, "MIN_FREE", 2**62)
    at.run()
    assert [s.value for s in at.subheader] == ["Painting"]  # full, but the worker wrote just now
    with sqlite3.connect(home / "jobs.sqlite3") as db:  # its last write 30 s ago
        db.execute("UPDATE jobs SET updated = updated - 30 WHERE id = ?", (job_id,))
    at.run()
    assert not at.exception
    assert [s.value for s in at.subheader] == ["Paused: the disk is full"]
    entry = "".join(e.proto.body for e in at.get("html"))  # its gallery entry says so too
    assert "Paused: the disk is full" in entry and "Painting:" not in entry
    assert not [b for b in at.button if b.label == "Stop and keep"]  # a stop is a write too
    assert any("goes on by itself" in c.value for c in at.caption)
    monkeypatch.setattr(health, "MIN_FREE", 0)  # a slow step on a disk with room: still painting
    at.run()
    assert [s.value for s in at.subheader] == ["Painting"]
