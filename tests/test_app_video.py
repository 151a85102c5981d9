"""The studio's Video mode, through Streamlit's AppTest against a real JobStore and worker: a
tiny clip made with PyAV (4 frames, 64x48, with sound), uploads refused in one line, a running
video's page, a finished one played and downloaded, and its gallery entry."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from clips import make_clip
from painterly import images as im
from painterly import videoio as vio
from painterly.app import logic
from painterly.config import StyleConfig, VideoConfig
from painterly.jobs import JobStore, WorkerInfo, run_worker
from test_app import app, button, png, sidebar_html, texts

FRAMES = 4
OWNER = "a-browser-token-v001"
TINY = StyleConfig(size=32, steps=4, scales=1, preview_every=2, threads=1, style_loss="gram")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> bytes:
    return make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", FRAMES, audio=True).read_bytes()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The studio's data folder for one test (as in test_app), with the plan's fixed step cost."""
    monkeypatch.setenv("PAINTERLY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAINTERLY_CALIBRATE", "0")
    return tmp_path / "home"


@pytest.fixture
def store(home: Path) -> JobStore:
    return JobStore(home)


def captions(at) -> list[str]:
    """The captions under the page's images."""
    return [c for i in at.image for c in i.captions]


def _audio_only(path: Path) -> bytes:
    with av.open(str(path), "w") as c:
        a = c.add_stream("aac", rate=48000)
        a.layout = "mono"
        for k in range(0, 4800, 1024):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
            frame.sample_rate, frame.pts = 48000, k
            c.mux(a.encode(frame))
        c.mux(a.encode(None))
    return path.read_bytes()


def test_video_mode_takes_a_clip_estimates_it_and_queues_a_video_job(home, store, clip, style_img) -> None:
    at = app()
    kind = at.button_group(key="kind")
    assert kind.value == "picture" and not [u for u in at.file_uploader if u.key == "video_upload"]
    kind.set_value("video").run()
    assert not at.exception
    assert [u.label for u in at.file_uploader] == ["Your video clip", "Painting(s) to borrow the style from"]
    assert any("a video clip" in t for t in texts(at, "info"))
    at.file_uploader(key="video_upload").set_value(("clip.mp4", clip, "video/mp4"))
    at.file_uploader(key="style_upload").set_value([("a.png", png(style_img), "image/png")])
    at.run()
    assert not at.exception and not texts(at, "error")
    assert f"64 × 48 px, {FRAMES} frames, 0.2 s at 25 fps, with sound" in captions(at)
    size = at.select_slider(key="default:size:video")
    assert [int(o) for o in size.options] == list(logic.VIDEO_SIZE_CHOICES) and max(logic.VIDEO_SIZE_CHOICES) <= 768
    size.set_value(256)
    at.select_slider(key="default:steps_later").set_value(10)
    at.run()
    estimate = next(t for t in texts(at, "markdown") if t.startswith("**About "))
    w, h = vio.frame_size(StyleConfig(size=256), 64, 48)
    assert f"for {FRAMES} frames of {w} × {h} px: the first" in estimate

    button(at, "Paint it").click().run()
    assert not at.exception
    job_id = at.query_params["job"]
    job = store.get(job_id[0] if isinstance(job_id, list) else job_id)
    assert job.is_video and job.status == "queued" and job.steps == FRAMES and (job.width, job.height) == (w, h)
    assert job.owner == (at.query_params["me"][0] if isinstance(at.query_params["me"], list) else at.query_params["me"])
    assert store.video_config(job.id) == VideoConfig(steps_later=10)
    assert store.notes(job.id)["kind"] == "video"
    assert any("Yours is next" in t for t in texts(at, "info"))
    assert at.title[0].value == "Your video"


@pytest.mark.parametrize(
    "what, message",
    [
        ("text", "video: not a video ffmpeg can read"),
        ("audio", "video: no video stream"),
        ("long", "frames (0 s) is over the limit of 5 frames"),
        ("huge", "video: 50 MB is over the 50 MB limit"),
    ],
)
def test_bad_clips_get_one_line_and_are_not_queued(home, store, tmp_path, style_img, monkeypatch, what, message):
    monkeypatch.setattr(vio, "CLIP_MAX_FRAMES", 5)
    data = {
        "text": lambda: b"this is not a video at all",
        "audio": lambda: _audio_only(tmp_path / "a.m4a"),
        "long": lambda: make_clip(tmp_path / "long.mp4", 6).read_bytes(),
        "huge": lambda: b"\0" * (im.MAX_INPUT_BYTES + 1),
    }[what]()
    at = app()
    at.button_group(key="kind").set_value("video").run()
    at.file_uploader(key="video_upload").set_value(("clip.mp4", data, "video/mp4"))
    at.file_uploader(key="style_upload").set_value([("a.png", png(style_img), "image/png")])
    at.run()
    assert not at.exception
    errors = texts(at, "error")
    assert len(errors) == 1 and message in errors[0] and "\n" not in errors[0], errors
    assert str(tmp_path) not in errors[0]  # no server path
    assert button(at, "Paint it").disabled
    assert store.list(OWNER) == [] and not any(store.jobs_dir.iterdir())


def test_a_running_video_shows_frames_time_per_frame_and_the_latest_frame(home, store, clip, style_img) -> None:
    job_id = store.submit_video(clip, [png(style_img)], TINY, owner=OWNER)
    # Play the worker's side through the store's real API (the video worker does exactly this).
    worker = WorkerInfo.current()
    assert store.claim(worker, lease=60).id == job_id
    store.keep_frame(job_id, worker, 0, style_img.resize((32, 24)))
    store.keep_frame(job_id, worker, 1, style_img.resize((32, 24)))
    store.record_progress(
        job_id, worker, step=2, steps=FRAMES, scale=1, scales=1, loss=5.0, elapsed=9.0, eta=4.0, losses=(),
        lease=60, frame_step=5, frame_steps=20, frame_seconds=2.0,
    )  # fmt: skip
    at = app(job=job_id, me=OWNER)
    assert not at.exception
    assert at.get("progress")[0].proto.value == 50
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Per frame"] == "2 s" and metrics["Remaining"] in ("4 s", "3 s", "2 s")
    assert "Frame 3 of 4: step 5 of 20 (from the frame before, carried along the motion)." in texts(at, "caption")
    assert "Frame 2, the latest finished" in captions(at)
    assert logic.job_status(store.get(job_id)) == "Painting: frame 3 of 4"
    button(at, "Stop and keep").click().run()
    assert store.get(job_id).cancel_requested


def test_a_finished_video_plays_downloads_and_shows_in_the_gallery(home, store, clip, style_img) -> None:
    job_id = store.submit_video(clip, [png(style_img)], TINY, owner=OWNER, video=VideoConfig(steps_later=2))
    assert run_worker(home, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done", job.error
    at = app(job=job_id, me=OWNER)
    assert not at.exception
    assert any(t.startswith(f"Finished: {FRAMES} frames of 32 × 24 px") for t in texts(at, "success"))
    videos = at.get("video")
    assert len(videos) == 1
    downloads = {d.label for d in at.get("download_button")}
    assert downloads == {"Download MP4"}
    assert not [b for b in at.button if b.label == "Tweak and run again"]
    # The gallery: the entry shows a frame (the latest), says it is a video, and plays it.
    gallery = app(view="pictures", me=OWNER)
    assert not gallery.exception
    cards = "".join(e.proto.body for e in gallery.get("html"))
    assert f"video, {FRAMES} frames" in cards and "data:image/jpeg;base64," in cards
    assert f"?job={job_id}&amp;me={OWNER}" in cards
    assert len(gallery.get("video")) == 1 and "Download MP4" in {d.label for d in gallery.get("download_button")}
    assert f"video, {FRAMES} frames" in sidebar_html(gallery)
