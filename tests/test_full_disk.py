"""A real full disk and a real read-only folder: the data folder on a small tmpfs of its own.

The worker runs as ``painterly worker`` in its own process. The disk is filled to the last byte
while a job runs, and a picture is submitted while it is full; then it is freed. Then the folder
is made read-only (remounted, with nothing open on it), and writable again. Nothing is lost: the
paused job finishes from where it was, the refused submit leaves nothing behind, the worker never
exits on a full disk, and a read-only folder is refused in one line.

Mounting needs root (or CAP_SYS_ADMIN); elsewhere this skips, saying so (test_health.py and
test_jobs.py simulate the same faults without privileges).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from painterly import images as im
from painterly.config import StyleConfig
from painterly.jobs import JobStore, health
from polling import wait_for

pytestmark = pytest.mark.timeout(240)


def _mount(point: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
                         capture_output=True)  # fmt: skip
    return out.returncode == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs of its own; skips where mounting is not allowed."""
    point = tmp_path / "disk"
    point.mkdir()
    if not _mount(point, "16m"):
        pytest.skip("mounting a tmpfs needs root (or CAP_SYS_ADMIN); the faults are simulated in test_health.py")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the disk has no byte left (ENOSPC); return it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (2**20, 2**12, 1):
            with contextlib.suppress(OSError):
                while True:
                    f.write(b"\0" * chunk)
    assert os.statvfs(folder).f_bavail == 0
    return filler


LONG = 500  # steps of the job that meets the full disk (see below)


def test_full_disk_and_read_only_folder_for_real(
    small_disk: Path, tmp_path: Path, free_port: int, content_img, style_img, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "MIN_FREE", 2**20)  # the floor for new pictures, on this small disk
    data = small_disk / "data"
    store = JobStore(data)
    photo, painting = im.encode_image(content_img.resize((96, 64)), "PNG"), im.encode_image(style_img, "PNG")
    cfg = StyleConfig(size=64, steps=20, scales=1, preview_every=1, threads=1, style_loss="gram")
    log = open(tmp_path / "worker.log", "w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "painterly", "worker", "--data-dir", str(data), "--threads", "1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        # 1. The disk fills up while a job runs, past its first checkpoint.
        # Long enough to outlast the worker's first checkpoint (every 5 s) and the filling of the
        # disk on a fast machine: 120 steps took 3.5 s on a 2-core Xeon with AMX, and the job was
        # done before it had a checkpoint.
        first = store.submit(photo, [painting], cfg.replace(steps=LONG), owner="me")
        wait_for(lambda: store.get(first).checkpoint_step > 0)
        filler = fill(small_disk)
        # A picture submitted now is refused with the reason, and leaves nothing.
        with pytest.raises(OSError) as info:
            store.submit(photo, [painting], cfg, owner="me")
        assert info.value.errno == errno.ENOSPC and info.value.strerror == "the disk is full"
        monkeypatch.setattr(health, "MIN_FREE", 0)  # even past the floor: the real ENOSPC
        with pytest.raises(OSError) as info:
            store.submit(photo, [painting], cfg, owner="me")
        assert info.value.errno == errno.ENOSPC
        assert sorted(p.name for p in (data / "jobs").iterdir()) == [first]
        # The running job stops writing (its row cannot change either: SQLite needs room to
        # commit); nothing fails, the worker stays, waiting for room.
        step = store.get(first).step
        time.sleep(3)
        job = store.get(first)
        assert worker.poll() is None and job.status in ("running", "queued") and job.error == ""
        assert job.step <= step + 2 and job.checkpoint_step > 0

        # 2. Space again: the job resumes from its checkpoint and finishes; new pictures are taken.
        filler.unlink()
        job = wait_for(lambda: (j := store.get(first)).status == "done" and j, timeout=120)
        assert job.step == LONG and job.error == "" and job.attempts <= 2
        with open(store.result_path(first), "rb") as f:
            assert im.load_image(f.read(), name="result").size == (job.width, job.height)
        log_text = store.log_path(first).read_text()
        assert "paused: the disk is full" in log_text and "resuming from the checkpoint at step" in log_text

        # 3. The folder goes read-only. Linux refuses to remount a file system read-only while
        # a file on it is open for writing, so the worker (and this side's connection) go first;
        # a folder read-only from the start is what a user meets. Refused in one line, both ways.
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        store.close()
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        try:
            assert health.disk_problem(data) == health.READ_ONLY
            for args in (["worker"], ["app", "--port", str(free_port)]):
                cmd = [sys.executable, "-m", "painterly", *args, "--data-dir", str(data)]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                assert out.returncode == 1 and out.stderr.count("\n") == 1, out.stderr
                assert out.stderr.startswith("painterly: error: ") and str(data) in out.stderr
                assert "read-only file system" in out.stderr.lower()
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        worker = subprocess.Popen(
            [sys.executable, "-m", "painterly", "worker", "--data-dir", str(data), "--threads", "1"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        second = store.submit(photo, [painting], cfg, owner="me")
        wait_for(lambda: store.get(second).status == "done", timeout=120)
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        finally:
            if worker.poll() is None:
                worker.kill()
            log.close()
        store.close()
    text = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in text, text
