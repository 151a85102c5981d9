"""Video jobs in the durable queue, for real: a tiny clip made with PyAV, the real store and worker
(and a real process killed mid-video), the real engine at 32 px with a few steps a frame."""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest

from clips import make_clip
from painterly import images as im
from painterly import videoio as vio
from painterly.config import StyleConfig, VideoConfig
from painterly.jobs import JobStore, run_worker
from painterly.jobs.store import SCHEMA_VERSION
from painterly.videoio import VideoError
from polling import wait_for
from test_jobs import WorkerThread, temp_leftovers

FRAMES = 4


def cfg(steps: int = 4, **kw) -> StyleConfig:
    # The Gram loss: the default W2's eigendecompositions cost ~0.5 s a step at any size.
    base = {"size": 32, "steps": steps, "scales": 1, "preview_every": 2, "threads": 1, "style_loss": "gram"}
    return StyleConfig(**{**base, **kw})


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "data")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    """4 frames of 64x48 moving stripes at 25 fps, with a 440 Hz tone."""
    return make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", FRAMES, audio=True).read_bytes()


def painting(style_img) -> bytes:
    return im.encode_image(style_img, "PNG")


def test_a_video_job_stored_before_reanchoring_resumes_without_it(store, clip, style_img):
    """video.json written before ``reanchor`` existed: read with 0 (the rule its first frames were
    made by, config.ADDED_VIDEO_OPTIONS), not today's default."""
    old = store.submit_video(clip, [painting(style_img)], cfg(), owner="me", video=VideoConfig())
    path = store.job_dir(old) / "video.json"
    record = json.loads(path.read_text())
    del record["reanchor"]
    path.write_text(json.dumps(record))
    assert store.video_config(old) == VideoConfig(reanchor=0.0)
    new = store.submit_video(clip, [painting(style_img)], cfg(), owner="me", video=VideoConfig())
    assert store.video_config(new) == VideoConfig() and VideoConfig().reanchor > 0


def test_a_video_job_becomes_an_mp4_with_every_frame_and_the_audio(store, clip, style_img):
    job_id = store.submit_video(clip, [painting(style_img)], cfg(), owner="me", video=VideoConfig(steps_later=2))
    job = store.get(job_id)
    assert job.is_video and job.status == "queued" and job.steps == FRAMES and job.step == 0
    assert (job.width, job.height) == vio.frame_size(cfg(), 64, 48) == (32, 24)
    assert store.video_config(job_id).steps_later == 2
    content, _ = store.inputs(job_id)  # the first frame, at the output size: thumbnails, "made from"
    assert content.size == (32, 24)

    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done" and not job.stopped_early, job.error
    assert job.step == job.steps == FRAMES and job.frame_steps == 2  # the last frame: steps_later
    assert job.frame_seconds is not None and job.frame_seconds > 0
    out = store.video_path(job_id)
    info = vio.probe(out)
    assert (info.frames, info.width, info.height, info.has_audio) == (FRAMES, 32, 24, True)
    assert info.fps == 25
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.audio[0].codec_context.name == "aac"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # private like every file of a job
    assert store.preview_path(job_id) is not None  # the gallery's frame
    assert not store.frames_dir(job_id).exists()  # the video holds them now
    assert store.result_path(job_id) is None  # no picture: a video
    assert temp_leftovers(store.data_dir) == [] and not (store.job_dir(job_id) / "encoding.mp4").exists()
    log = store.log_path(job_id).read_text()
    assert "started by" in log and f"{FRAMES} frames" in log and f"done: {FRAMES} frames" in log


_KILLABLE_WORKER = """
import sys
from painterly.jobs import run_worker
run_worker(sys.argv[1], poll=0.05)
"""


def test_a_video_job_killed_mid_video_resumes_at_the_first_unfinished_frame(store, clip, style_img, monkeypatch):
    # Later frames long enough (30 steps, ~2 s)  that the kill lands inside one.
    job_id = store.submit_video(clip, [painting(style_img)], cfg(), video=VideoConfig(steps_later=30))
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_WORKER, str(store.data_dir)])
    try:
        wait_for(lambda: (j := store.get(job_id)).checkpoint_step >= 1 and j.frame_step >= 1 and j, timeout=120)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    killed = store.get(job_id)
    kept = killed.checkpoint_step
    assert killed.status == "running" and 1 <= kept < FRAMES  # left behind by the dead worker
    assert len(store.kept_frames(job_id)) >= kept
    before = [(store.frames_dir(job_id) / vio.frame_name(i)).read_bytes() for i in range(kept)]

    made: list[int] = []
    original = JobStore.keep_frame

    def spy(self, job, worker, index, img):
        made.append(index)
        return original(self, job, worker, index, img)

    monkeypatch.setattr(JobStore, "keep_frame", spy)
    worker = WorkerThread(store.data_dir, once=True)
    wait_for(lambda: made and made[0] >= 0, timeout=120)
    # The frames kept before the kill are the resumed run's start, untouched.
    assert [(store.frames_dir(job_id) / vio.frame_name(i)).read_bytes() for i in range(kept)] == before
    assert worker.join(stop=False) == 1
    job = store.get(job_id)
    assert job.status == "done" and not job.stopped_early and job.attempts == 2, job.error
    assert made == list(range(kept, FRAMES))  # resumed at the first unfinished frame, not frame 0
    assert job.start_step == kept
    log = store.log_path(job_id).read_text()
    assert f"queued again to resume at frame {kept + 1}" in log
    assert f"resuming at frame {kept + 1} of {FRAMES}" in log
    assert vio.probe(store.video_path(job_id)).frames == FRAMES
    assert temp_leftovers(store.data_dir) == []


def test_stop_and_keep_ends_the_video_at_the_frames_made(store, clip, style_img):
    job_id = store.submit_video(clip, [painting(style_img)], cfg(), video=VideoConfig(steps_later=40))
    worker = WorkerThread(store.data_dir)
    try:
        wait_for(lambda: store.get(job_id).checkpoint_step >= 1, timeout=120)
        store.cancel(job_id)
        wait_for(lambda: store.get(job_id).status == "done", timeout=120)
    finally:
        worker.join()
    job = store.get(job_id)
    assert job.stopped_early and 1 <= job.step < FRAMES
    info = vio.probe(store.video_path(job_id))
    assert info.frames == job.step and info.has_audio  # the audio is cut at the video's end


def test_a_queued_video_is_cancelled_before_it_starts(store, clip, style_img):
    job_id = store.submit_video(clip, [painting(style_img)], cfg())
    store.cancel(job_id)
    assert store.get(job_id).status == "cancelled"
    assert run_worker(store.data_dir, once=True) == 0


def _audio_only(path: Path) -> bytes:
    """A tenth of a second of silence in an .m4a: a valid file with no video stream."""
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for k in range(0, 4800, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, k
            c.mux(a.encode(frame))
        c.mux(a.encode(None))
    return path.read_bytes()


def test_bad_clips_are_refused_in_one_line_before_anything_is_queued(store, tmp_path, clip, style_img, monkeypatch):
    paintings = [painting(style_img)]

    def refused(data: bytes, words: str, kind: type[Exception] = VideoError) -> None:
        with pytest.raises(kind) as e:
            store.submit_video(data, paintings, cfg())
        message = str(e.value)
        assert words in message and "\n" not in message and str(tmp_path) not in message, message
        assert message.startswith("video")  # named by a word, never a server path

    refused(b"this is not a video at all", "not a video ffmpeg can read")
    refused(im.encode_image(style_img, "PNG"), "")  # a picture is not a clip
    refused(_audio_only(tmp_path / "a.m4a"), "no video stream")
    refused(b"\0" * (im.MAX_INPUT_BYTES + 1), "over the 50 MB limit", im.ImageError)
    refused(clip[: len(clip) // 3], "")  # cut short: damaged or no frames
    monkeypatch.setattr(vio, "CLIP_MAX_FRAMES", FRAMES - 1)
    refused(clip, f"{FRAMES} frames")  # too long for the studio
    assert "cut the clip first" in str(pytest.raises(VideoError, vio.check_clip_bytes, clip).value)
    assert store.list("") == [] and list(store.jobs_dir.iterdir()) == []


def test_schema_v3_data_dirs_keep_their_pictures(tmp_path, content_img, style_img):
    from painterly.jobs.store import _MIGRATIONS

    data = tmp_path / "old"
    data.mkdir()
    conn = sqlite3.connect(data / "jobs.sqlite3")
    conn.executescript(";".join(_MIGRATIONS[v] for v in (1, 2, 3)) + "; PRAGMA user_version = 3;")
    conn.execute(
        "INSERT INTO jobs (id, owner, status, config, n_styles, width, height, created, updated, steps, scales)"
        " VALUES ('an-old-picture-job-0001', 'me', 'done', ?, 1, 32, 21, 0, 0, 6, 1)",
        (cfg().to_json(),),
    )
    conn.commit()
    conn.close()
    store = JobStore(data)
    old = store.get("an-old-picture-job-0001")
    assert old.kind == "picture" and not old.is_video and old.frame_seconds is None
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    conn.close()


def test_video_jobs_keep_the_time_per_frame_and_eta_in_the_row(store, clip, style_img):
    """While a video runs, the row says frames done / total, the current frame's step, the time
    per frame and an ETA (the studio's page reads exactly these)."""
    job_id = store.submit_video(clip, [painting(style_img)], cfg(), video=VideoConfig(steps_later=10))
    seen = []
    worker = WorkerThread(store.data_dir, once=True)
    t0 = time.time()
    while worker.thread.is_alive() and time.time() - t0 < 120:
        j = store.get(job_id)
        if j.status == "running" and j.step >= 2:
            seen.append(j)
        time.sleep(0.01)
    assert worker.join(stop=False) == 1
    assert seen, "never saw the job between frames"
    mid = seen[0]
    assert mid.steps == FRAMES and mid.frame_seconds and mid.eta is not None and mid.eta > 0
    assert store.get(job_id).status == "done"
