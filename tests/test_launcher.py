"""The launcher keeps the studio up whatever its workers do (app/launcher.py), for real: the real
``launch()`` in a child process, its real Streamlit server and worker processes.

A worker is killed while the data folder is unusable, so each new worker exits at once: the
launcher starts them again and again, waiting longer each time, never giving up; the page keeps
answering, and the status file the page reads says the painter keeps stopping. When the folder
is fixed, the next worker starts and runs a queued job to the end, with nobody's help.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from painterly import images as im
from painterly.app.launcher import STATUS_ENV
from painterly.config import StyleConfig
from painterly.jobs import JobStore
from polling import wait_for

pytestmark = [
    pytest.mark.timeout(240),
    pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the children from /proc (Linux)"),
]


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def environ(pid: int) -> dict[str, str]:
    items = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(i.decode().split("=", 1) for i in items if b"=" in i)


def healthy(url: str) -> bool:
    return urllib.request.urlopen(url + "_stcore/health", timeout=5).read() == b"ok"


def test_workers_that_keep_dying_never_bring_the_studio_down(
    tmp_path: Path, free_port: int, wait_serving, content_img, style_img
) -> None:
    data, url = tmp_path / "data", f"http://127.0.0.1:{free_port}/"
    log_path = tmp_path / "studio.log"
    code = (
        "from painterly.app import launch; "
        f"raise SystemExit(launch(port={free_port}, data_dir={str(data)!r}, restart_delays=(0.2, 1.0)))"
    )
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_serving(url, proc, log_path)
        kids = {p: cmdline(p) for p in children(proc.pid)}
        (server,) = [p for p, c in kids.items() if "painterly.app.serve" in c]
        (worker,) = [p for p, c in kids.items() if " worker " in c]
        status_file = Path(environ(server)[STATUS_ENV])
        status = lambda: json.loads(status_file.read_text())  # noqa: E731
        assert status()["running"] == 1 and not status()["failing"]

        # The folder becomes unusable (its jobs/ a file), and the worker dies.
        (data / "jobs").rename(data / "jobs.away")
        (data / "jobs").write_text("not a folder")
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: status()["failing"] and status()["exits"] >= 4, timeout=60)
        assert proc.poll() is None and healthy(url), "the studio stays up"
        text = log_path.read_text()
        assert "starting another in 0 s" in text and "starting another in 1 s" in text  # waits grow, capped
        assert "stopping" not in text and "Traceback" not in text
        assert "cannot use" in text  # each worker says why, in one line

        # Fixed: the next worker starts by itself and runs what is queued.
        (data / "jobs").unlink()
        (data / "jobs.away").rename(data / "jobs")
        store = JobStore(data)
        cfg = StyleConfig(size=32, steps=3, scales=1, preview_every=1, threads=1, style_loss="gram")
        job_id = store.submit(im.encode_image(content_img, "PNG"), [im.encode_image(style_img, "PNG")], cfg)
        wait_for(lambda: store.get(job_id).status == "done", timeout=120, every=0.3)
        assert status()["running"] == 1 and proc.poll() is None and healthy(url)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert not status_file.exists(), "the status folder is removed on the way out"
