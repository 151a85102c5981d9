"""A video job in the worker: ``stylize_video`` on the job's clip, frame by frame, durable.

Each finished frame is kept in the job's ``frames/`` folder as it is made (``JobStore.keep_frame``),
so a job stopped, paused or killed resumes at the first unfinished frame, through
``stylize_video``'s own resume (``done=`` the kept frames). Progress goes to the job's row like a
picture's, counted in frames (done / total), with the current frame's step, the time per frame
and the ETA. When the last frame is in, the frames are encoded as H.264 with the clip's audio and
put in place as ``result.mp4`` by ``JobStore.finish_video``. "Stop and keep" ends the video at the
frames finished so far (at least the first: a stop asked during it waits for it).

Called by ``worker.run_job``, which handles what every job shares (the lease's heartbeat, a lost
lease, a full disk, a failure's reason).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Optional

from ..images import ImageError
from .store import Job, JobStore, WorkerInfo
from .worker import FLUSH_EVERY, RunTracker  # progress writes as often as a picture's

if TYPE_CHECKING:
    from PIL import Image

    from ..video import VideoProgress

ENCODING = "encoding.mp4"  # the finished video before it is put in place (same folder: a rename)


def run_video(
    store: JobStore, job: Job, worker: WorkerInfo, *, stop: threading.Event, lease: float, clock0: float
) -> str:
    """Run (or resume) a claimed video job; return "done", "failed", "queued" or "lost"."""
    from .. import videoio as vio
    from ..video import stylize_video

    try:
        _, styles = store.inputs(job.id)
    except ImageError as e:
        store.fail(job.id, worker, f"the job's paintings cannot be read ({e})")
        return "failed"
    config = store.run_config(job.id)
    video = store.video_config(job.id)
    clip = store.clip_path(job.id)
    if clip is None:
        store.fail(job.id, worker, "the job's video clip is missing from the data folder")
        return "failed"
    info = vio.probe(clip, name="video")
    frames = vio.read_frames(clip, (job.width, job.height), max_frames=job.steps, name="video")
    done = store.kept_frames(job.id)[: len(frames)]
    _tidy(store, job)

    def encode_and_finish(result: list[Image.Image], elapsed: float) -> str:
        encoded = store.job_dir(job.id) / ENCODING
        vio.write_video(result, encoded, info.fps, audio_from=clip if info.has_audio else None, private=True)
        stopped_early = len(result) < len(frames)
        if not store.finish_video(
            job.id, worker, encoded, stopped_early=stopped_early, frames=len(result), elapsed=elapsed
        ):
            store.log(job.id, f"{worker.token}: the job was handed on meanwhile; this run's video is dropped")
            return "lost"
        return "done"

    attempt = f"attempt {job.attempts}" if job.attempts > 1 else "first attempt"
    if done and (job.cancel_requested or len(done) == len(frames)):
        # Stopped (or complete) while waiting to resume: the kept frames are the video.
        return encode_and_finish(done, job.elapsed)
    if done:
        store.log(job.id, f"resuming at frame {len(done) + 1} of {len(frames)}, {len(done)} kept ({attempt})")
    else:
        store.log(job.id, f"started by {worker.token}: {len(frames)} frames ({attempt})")

    tracker = _VideoTracker(store, job, worker, stop, lease=lease, clock0=clock0, kept=len(done))
    result = stylize_video(
        frames,
        styles,
        config,
        video,
        on_progress=tracker,
        on_frame=lambda i, img: store.keep_frame(job.id, worker, i, img),
        done=done,
    )
    tracker.flush()
    if tracker.stopping or not result:
        # Worker shutdown (or a stop before any frame was kept): the frames are kept; hand it back.
        store.requeue(job.id, worker, f"the worker stopped with {len(result)} frame(s) kept; it resumes after them")
        return "queued"
    return encode_and_finish(result, tracker.elapsed())


def _tidy(store: JobStore, job: Job) -> None:
    """Remove a previous attempt's unfinished encoding (a worker killed while writing it)."""
    folder = store.job_dir(job.id)
    for leftover in (folder / ENCODING, *folder.glob(f".{ENCODING.split('.')[0]}.*")):
        leftover.unlink(missing_ok=True)


class _VideoTracker(RunTracker):
    """The ``on_progress`` callback of a video run: writes progress (in frames) and reads stops."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        worker: WorkerInfo,
        stop: threading.Event,
        *,
        lease: float,
        clock0: float,
        kept: int,
    ) -> None:
        super().__init__(store, job, worker, stop, lease=lease, clock0=clock0)
        self.latest: Optional[VideoProgress] = None
        self.scale, self.scales, self.loss, self.precision = 0, 0, 0.0, ""
        self.frame_step = self.frame_steps = 0
        self.kept = kept
        self.cancelled = job.cancel_requested  # asked before the worker took it up again

    def flush(self) -> None:
        """Write the latest progress; note a stop request."""
        p = self.latest
        if p is None:
            return
        self.write(
            step=p.done,
            steps=p.frames,
            scale=self.scale,
            scales=self.scales,
            loss=self.loss,
            eta=p.eta,
            losses=(),
            precision=self.precision,
            frame_step=self.frame_step,
            frame_steps=self.frame_steps,
            frame_seconds=p.frame_seconds,
        )

    def __call__(self, p: VideoProgress) -> None:
        from ..progress import Cancelled

        self.latest = p
        if p.step is not None:
            s = p.step
            self.scale, self.scales, self.loss, self.precision = s.scale, s.scales, s.loss, s.precision
            self.frame_step, self.frame_steps = s.step, s.steps
        else:  # a frame has just finished (and is kept)
            self.kept = p.done
        if p.step is None or time.monotonic() - self.last_flush >= FLUSH_EVERY:
            self.flush()
        if p.done >= p.frames:
            return  # the last frame is in: nothing left to stop
        if self.stop.is_set():
            self.stopping = True
            raise Cancelled
        if self.cancelled and self.kept:  # "stop and keep" keeps at least the first frame
            raise Cancelled
