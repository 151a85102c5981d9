"""`painterly video` end to end on tiny generated clips: audio carried over, a killed run
resumed at the right frame, and bad inputs refused in one line with nothing left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from clips import make_clip
from painterly import videoio as vio
from painterly.cli import main
from test_cli import assert_one_line_error, run

# Put first, not in place of what is there: a machine may bring packages (PyAV) on PYTHONPATH.
SRC = str(Path(__file__).resolve().parents[1] / "src")

FAST = ["--threads", "1", "--size", "32", "--steps", "2", "--steps-later", "1", "--init", "content"]
FAST += ["--precision", "fp32", "--style-loss", "gram"]


@pytest.fixture
def style(tmp_path: Path, style_img: Image.Image) -> Path:
    path = tmp_path / "style.png"
    style_img.save(path)
    return path


def test_video_with_audio_end_to_end(capsys, tmp_path, style):
    clip = make_clip(tmp_path / "in.mp4", 4, audio=True)
    out = tmp_path / "out.mp4"
    rc, stdout, err = run(capsys, "video", clip, style, "-o", out, *FAST, "--json")
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["frames"] == summary["done"] == 4 and summary["resumed_at"] == 0
    info = vio.probe(out)
    assert (info.frames, info.fps, info.has_audio) == (4, 25, True)
    assert (info.width, info.height) == (32, 24)
    assert "wrote" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4", "style.png"]  # frames folder gone


def test_frames_folder_in_and_out(capsys, tmp_path, style):
    src = vio.write_frames_folder([Image.new("RGB", (40, 30), (i * 50, 90, 120)) for i in range(3)], tmp_path / "in")
    rc, _, err = run(capsys, "video", src, style, "-o", tmp_path / "out", *FAST)
    assert rc == 0, err
    made = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert made == ["000001.png", "000002.png", "000003.png"]


def test_a_killed_run_resumes_at_the_first_unfinished_frame(capsys, tmp_path, style):
    clip = make_clip(tmp_path / "in.mp4", 8)
    out = tmp_path / "out.mp4"
    work = tmp_path / "out.mp4.frames"
    args = ["video", str(clip), str(style), "-o", str(out), *FAST, "--steps-later", "6", "-q"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "painterly", *args], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (work / "000003.png").exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)  # a crash: no chance to tidy up
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    kept = vio.finished_frames(work)
    assert 3 <= len(kept) < 8 and not out.exists()
    before = {p.name: p.read_bytes() for p in work.glob("*.png")}
    rc, stdout, err = run(capsys, *args[:-1], "--json", "--keep-frames")
    assert rc == 0, err
    summary = json.loads(stdout)
    assert summary["resumed_at"] == len(kept) and summary["done"] == 8
    assert f"resuming at frame {len(kept) + 1} of 8" in err
    for name, data in before.items():  # the finished frames were kept, not made again
        if int(name[:6]) <= len(kept):
            assert (work / name).read_bytes() == data
    assert vio.probe(out).frames == 8


def test_a_frames_folder_from_other_settings_is_refused(capsys, tmp_path, style):
    clip = make_clip(tmp_path / "in.mp4", 2)
    out = tmp_path / "out"
    assert main(["video", str(clip), str(style), "-o", str(out), *FAST, "-q"]) == 0
    rc, _, err = run(capsys, "video", clip, style, "-o", out, *FAST, "--temporal-weight", "5")
    assert_one_line_error(rc, err)
    assert "other settings" in err


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda p: p.write_text("not a film\n" * 50), "not a video ffmpeg can read"),
        (lambda p: p.write_bytes(b""), "the file is empty"),
    ],
)
def test_bad_input_gets_one_line_and_leaves_nothing(capsys, tmp_path, style, write, message):
    bad = tmp_path / "bad.mp4"
    write(bad)
    out = tmp_path / "out.mp4"
    rc, _, err = run(capsys, "video", bad, style, "-o", out, *FAST)
    assert_one_line_error(rc, err)
    assert message in err
    assert not out.exists() and not (tmp_path / "out.mp4.frames").exists()


def test_bad_options_are_usage_errors(capsys, tmp_path, style):
    clip = make_clip(tmp_path / "in.mp4", 2)
    rc, _, err = run(capsys, "video", clip, style, "-o", tmp_path / "o.mp4", "--shot-change", "2")
    assert rc == 2 and "--shot-change must be at most 1.0" in err
    rc, _, err = run(capsys, "video", clip, style, "-o", tmp_path / "o.gif")
    assert_one_line_error(rc, err)
    assert "unsupported output type '.gif'" in err


def test_ctrl_c_stops_with_130_and_keeps_the_finished_frames(tmp_path, style):
    clip = make_clip(tmp_path / "in.mp4", 8)
    work = tmp_path / "out.mp4.frames"
    args = ["video", str(clip), str(style), "-o", str(tmp_path / "out.mp4"), *FAST, "--steps-later", "6"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))
    proc = subprocess.Popen([sys.executable, "-m", "painterly", *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (work / "000002.png").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    kept = len(vio.finished_frames(work))
    assert 2 <= kept < 8
    assert f"stopped after {kept} of 8 frames" in err and "Traceback" not in err
