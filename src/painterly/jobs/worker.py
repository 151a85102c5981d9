"""The worker: take the oldest queued job, run ``stylize`` on it, write what happens.

One job at a time per worker, FIFO. While a job runs, the progress callback writes the step,
loss and time estimate to the job's row (at most every ``FLUSH_EVERY`` seconds), the latest
image to ``preview.jpg``, and every ``checkpoint_every`` seconds a checkpoint to resume from;
it also reads the job's stop request. A heartbeat thread renews the worker's lease even
through long steps, so a live worker is never taken for a dead one, while a killed worker's
job is handed on (see ``JobStore.recover_stale``) and resumes from its checkpoint through
``stylize(..., init_image=checkpoint, start_step=step)``.

torch is imported only here, inside functions, so ``import painterly.jobs`` stays cheap
for the studio.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from PIL import Image

from ..allocator import hand_back
from ..images import ImageError
from ..plan import DEFAULT_STEP_COST, RunPlan
from .health import disk_fault
from .store import Job, JobStore, LeaseLost, WorkerInfo

if TYPE_CHECKING:
    from pathlib import Path

    from ..progress import Progress

log = logging.getLogger("painterly.jobs")

FLUSH_EVERY = 0.5  # seconds between progress writes to the row (and stop-request reads)
MAX_BACKOFF = 30.0  # seconds between looks at a job store that cannot be used (a full disk)
PAUSE_RETRY = 5.0  # seconds between tries to put a job back in the queue while the disk is full
PREVIEW_EVERY = 0.5  # seconds between preview.jpg writes; the studio refreshes every second
Engine = Callable[..., Image.Image]  # stylize's signature


def run_worker(
    data_dir: Union[Path, str, None] = None,
    *,
    stop: Optional[threading.Event] = None,
    once: bool = False,
    poll: float = 0.5,
    lease: float = 30.0,
    max_attempts: int = 3,
    checkpoint_every: float = 5.0,
    threads: int = 0,
    executor: str = "local",
) -> int:
    """Run queued jobs until ``stop`` is set (or, with ``once``, until the queue is empty).

    Args:
        data_dir: the job store's folder (None: ``default_data_dir()``).
        stop: set it to stop; the job running then goes back to the queue with a checkpoint
            of its current image, and resumes from there in the next worker.
        once: return as soon as no job is queued.
        poll: seconds between looks at an empty queue.
        lease: seconds a job stays ours without a heartbeat; a worker whose lease ran out,
            or whose process is gone (same host), is presumed dead and its job handed on.
        max_attempts: a job whose worker died this many times fails, with the reason.
        checkpoint_every: seconds between checkpoints (taken when the engine hands over an
            image, every ``config.preview_every`` steps).
        threads: torch CPU threads for this worker. 0: share the machine's cores (torch's
            default, one thread per physical core) evenly among the workers alive on this
            host, re-checked at each job: OpenMP threads that oversubscribe the CPU spin and
            slow every run down many times over. A job's own ``config.threads`` wins.
        executor: "local" runs jobs in this process; "ray" runs each job's optimisation as a
            task on a Ray cluster (``ray.init()``: $RAY_ADDRESS, else a local one; needs
            ``pip install 'painterly[ray]'`` here and painterly on the cluster's nodes). This
            worker still claims the jobs and writes all progress and files, so the store
            stays on this machine; run one such worker per job to run at a time.

    Returns:
        The number of jobs this worker took (finished, failed or handed back).
    """
    store = JobStore(data_dir)
    stop = stop if stop is not None else threading.Event()
    me = WorkerInfo.current()
    if executor not in ("local", "ray"):
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    engine = None  # run_job's default: stylize() in this process
    if executor == "ray":
        from .ray_executor import ray_engine

        engine = ray_engine(threads=threads)
        cores = 0
    else:
        import torch

        cores = torch.get_num_threads()  # torch's default: the physical cores
    log.info("worker %s on %s", me.token, store.data_dir)
    store.register(me)
    taken = 0
    busy = False
    next_look = 0.0
    backoff = poll
    try:
        while not stop.is_set():
            try:
                if time.monotonic() >= next_look:
                    store.register(me)
                    store.recover_stale(max_attempts)
                    next_look = time.monotonic() + min(5.0, lease / 2)
                job = store.claim(me, lease)
            except (OSError, sqlite3.Error) as e:
                # A full disk, a folder gone read-only, a database locked for long: a state of
                # the machine, not of this worker. Keep serving, looking again less and less
                # often; the queue moves on when the disk has room again.
                if once:
                    raise
                log.warning("worker %s: the job store is not usable now (%s); looking again in %.0f s", me.token, e,
                            backoff)  # fmt: skip
                stop.wait(backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)
                continue
            if job is None:
                backoff = poll
                if busy:  # going idle: what the last runs kept in the heap goes back (allocator.py)
                    hand_back()
                    busy = False
                if once:
                    break
                stop.wait(poll)
                continue
            taken += 1
            busy = True
            if cores:
                torch.set_num_threads(threads or _fair_share(store, me, cores))
            try:
                ended = run_job(
                    store, job, me, stop=stop, lease=lease, checkpoint_every=checkpoint_every, engine=engine
                )
                if ended != "paused":
                    backoff = poll
                elif not once:
                    stop.wait(backoff)
                    backoff = min(MAX_BACKOFF, backoff * 2)
            except Exception:
                # run_job records a job's own failures; this is the store itself failing (disk
                # full, database locked for long). Keep serving: the job's lease runs out and
                # another look hands it on or fails it with the reason.
                log.exception("worker %s: job %s could not be recorded", me.token, job.id)
                stop.wait(poll)
    finally:
        with contextlib.suppress(OSError, sqlite3.Error):  # a full disk must not hide why we stop
            store.register(me, gone=True)
    return taken


def _fair_share(store: JobStore, me: WorkerInfo, cores: int) -> int:
    """Threads for this worker: the host's cores shared among the workers alive on it."""
    here = sum(1 for w in store.workers() if w.host == me.host) or 1
    return max(1, cores // here)


def run_job(
    store: JobStore,
    job: Job,
    worker: WorkerInfo,
    *,
    stop: Optional[threading.Event] = None,
    lease: float = 30.0,
    checkpoint_every: float = 5.0,
    engine: Optional[Engine] = None,
) -> str:
    """Run one claimed job to its end; return its final status.

    Every way out leaves the row in a clear state: "done" (with ``result.png``), "failed"
    (with the reason), "queued" (stopped cleanly, to resume), "paused" (back in the queue
    because the disk is full or read-only), or untouched if the job was handed to another
    worker meanwhile ("lost").

    Args:
        engine: what runs the optimisation: ``stylize`` (the default, in this process) or
            anything with its signature, e.g. ``ray_executor.ray_engine()``, which runs it on
            a Ray cluster and relays its progress here, so all writes to the store stay local.
    """
    import torch

    stop = stop if stop is not None else threading.Event()
    heartbeat = _Heartbeat(store, job.id, worker, lease)
    heartbeat.start()
    threads_before = torch.get_num_threads()
    clock0 = time.monotonic()
    try:
        if job.is_video:
            from .videojob import run_video

            # Frames run in this process whatever the executor (stylize_video chains them here).
            return run_video(store, job, worker, stop=stop, lease=lease, clock0=clock0)
        return _run_picture(store, job, worker, stop, lease, checkpoint_every, engine, clock0)
    except KeyboardInterrupt:
        # Ctrl-C in a program calling run_worker directly: hand the job back, then stop.
        store.requeue(job.id, worker, "interrupted; it will resume from its last checkpoint")
        raise
    except LeaseLost:
        store.log(job.id, f"{worker.token}: lost the job to another worker (presumed dead); stopping this run")
        return "lost"
    except Exception as e:  # any failure becomes a reason in the row, never a silent hole
        store.log(job.id, "error:\n" + traceback.format_exc().rstrip())
        if disk_fault(e):
            # The machine's state, not the job's: back to the queue (its checkpoint kept), to
            # resume when the disk can be written again. The worker waits before its next claim.
            _pause(store, job.id, worker, stop)
            return "paused"
        store.fail(job.id, worker, failure_reason(e, job))
        return "failed"
    finally:
        heartbeat.halt()
        torch.set_num_threads(threads_before)  # a job's config.threads must not leak into the next


def _run_picture(
    store: JobStore,
    job: Job,
    worker: WorkerInfo,
    stop: threading.Event,
    lease: float,
    checkpoint_every: float,
    engine: Optional[Engine],
    clock0: float,
) -> str:
    """``run_job``'s work for a picture: resume from the checkpoint, run, finish or hand back."""
    from ..stylize import stylize

    engine = engine if engine is not None else stylize
    try:
        content, styles = store.inputs(job.id)
    except ImageError as e:
        store.fail(job.id, worker, f"the job's input images cannot be read ({e})")
        return "failed"
    config = store.run_config(job.id)
    resume = store.checkpoint(job.id)
    start_img, start_step = resume if resume is not None else (None, 0)
    attempt = f"attempt {job.attempts}" if job.attempts > 1 else "first attempt"
    if resume is not None and (job.cancel_requested or start_step >= config.steps):
        # Stopped (or complete) while waiting to resume: the checkpoint is the picture.
        assert start_img is not None
        store.finish(
            job.id, worker, start_img, stopped_early=start_step < config.steps, step=start_step, elapsed=job.elapsed
        )
        return "done"
    if start_step:
        store.log(job.id, f"resuming from the checkpoint at step {start_step}/{config.steps} ({attempt})")
    else:
        store.log(job.id, f"started by {worker.token} ({attempt})")

    plan = RunPlan.build(config, *content.size, n_styles=len(styles))
    tracker = _Tracker(
        store,
        job,
        worker,
        stop,
        plan,
        lease=lease,
        checkpoint_every=checkpoint_every,
        clock0=clock0,
        resumed_at=start_step,
    )
    image = engine(content, styles, config, on_progress=tracker, init_image=start_img, start_step=start_step)
    tracker.flush()
    elapsed = tracker.elapsed()
    if tracker.stopping:
        # Worker shutdown: keep the image as the checkpoint and give the job back.
        if tracker.last_step > start_step:
            store.save_checkpoint(job.id, worker, image, tracker.last_step)
        store.requeue(job.id, worker, f"the worker stopped at step {tracker.last_step}; it will resume there")
        return "queued"
    stopped_early = tracker.cancelled and tracker.last_step < config.steps
    if not store.finish(job.id, worker, image, stopped_early=stopped_early, step=tracker.last_step, elapsed=elapsed):
        store.log(job.id, f"{worker.token}: the job was handed on meanwhile; this run's result is dropped")
        return "lost"
    return "done"


def _pause(store: JobStore, job_id: str, worker: WorkerInfo, stop: threading.Event) -> None:
    """Put a job back in the queue after a disk fault. On a full disk that write fails too
    (SQLite needs room to commit): keep trying, every few seconds, until there is room again
    (or the worker is stopped: then the next worker finds the job's process gone and requeues it).
    Meanwhile the job shows as running, and the studio's banner says the disk is full."""
    wait = 0.5
    while True:
        try:
            store.requeue(job_id, worker, "paused: the disk is full or read-only; it resumes when it can write")
            return
        except (OSError, sqlite3.Error) as e:
            if not disk_fault(e):
                raise
        if stop.wait(wait):
            return
        wait = min(PAUSE_RETRY, wait * 2)


def failure_reason(e: BaseException, job: Job) -> str:
    """One line a person can act on, for the row's ``error`` (shown on the page: no paths)."""
    text = " ".join(str(e).split()) or type(e).__name__
    if isinstance(e, OSError) and e.strerror:
        text = e.strerror  # str(e) names the server's files
    if isinstance(e, MemoryError) or "out of memory" in text.lower() or "can't allocate" in text.lower():
        return (
            f"ran out of memory at {job.width}x{job.height}; try a smaller output size, "
            "fewer scales or fewer style layers"
        )
    if isinstance(e, (ImageError, ValueError)):
        return text
    return f"{type(e).__name__}: {text}"


class RunTracker:
    """What the ``on_progress`` callback of a run keeps, a picture's or a video's: the job, its
    worker and lease, its clock across attempts, and whether it is asked to stop."""

    def __init__(
        self, store: JobStore, job: Job, worker: WorkerInfo, stop: threading.Event, *, lease: float, clock0: float
    ) -> None:
        self.store, self.job, self.worker, self.stop, self.lease = store, job, worker, stop, lease
        self.clock0 = clock0
        self.base_elapsed = job.elapsed  # work done by earlier attempts
        self.cancelled = False  # the user asked to stop and keep
        self.stopping = False  # the worker is shutting down
        self.last_flush = 0.0  # when progress was last written (monotonic)

    def elapsed(self) -> float:
        return self.base_elapsed + time.monotonic() - self.clock0

    def write(self, **progress: Any) -> None:
        """Record ``progress`` in the job's row (with the time so far and the lease renewed) and
        note whether the user asked to stop and keep."""
        asked = self.store.record_progress(
            self.job.id, self.worker, elapsed=self.elapsed(), lease=self.lease, **progress
        )  # fmt: skip
        self.last_flush = time.monotonic()
        self.cancelled = self.cancelled or asked


class _Tracker(RunTracker):
    """The ``on_progress`` callback of one picture: writes progress, previews, checkpoints; stops."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        worker: WorkerInfo,
        stop: threading.Event,
        plan: RunPlan,
        *,
        lease: float,
        checkpoint_every: float,
        clock0: float,
        resumed_at: int,
    ) -> None:
        super().__init__(store, job, worker, stop, lease=lease, clock0=clock0)
        self.plan, self.checkpoint_every = plan, checkpoint_every
        self.pending: list[tuple[int, float]] = []
        self.last_step = resumed_at
        self.last_preview = 0.0
        self.last_checkpoint = time.monotonic()
        self.progress: Optional[Progress] = None

    def flush(self) -> None:
        """Write the latest progress and loss points; note a stop request."""
        p = self.progress
        if p is None:
            return
        eta = self.plan.remaining(self.job.config, DEFAULT_STEP_COST, p.step, self.elapsed()) if p.step > 0 else None
        self.write(
            step=p.step,
            steps=p.steps,
            scale=p.scale,
            scales=p.scales,
            loss=p.loss,
            eta=eta,
            losses=self.pending,
            precision=p.precision,
        )
        self.pending = []

    def __call__(self, p: Progress) -> None:
        from ..progress import Cancelled

        now = time.monotonic()
        self.progress, self.last_step = p, p.step
        self.pending.append((p.step, p.loss))
        if now - self.last_flush >= FLUSH_EVERY or p.step == p.steps:
            self.flush()
        if p.image is not None:
            end_of_scale = p.step == self.plan.end_of_scale(p.scale)
            if end_of_scale or now - self.last_preview >= PREVIEW_EVERY:
                self.store.save_preview(self.job.id, p.image)
                self.last_preview = now
            if p.step < p.steps and now - self.last_checkpoint >= self.checkpoint_every:
                self.store.save_checkpoint(self.job.id, self.worker, p.image, p.step)
                self.last_checkpoint = now
        if p.step >= p.steps:
            return  # the last step: nothing left to stop
        if self.cancelled:
            raise Cancelled
        if self.stop.is_set():
            self.stopping = True
            raise Cancelled


class _Heartbeat(threading.Thread):
    """Renews the lease every lease/3 seconds, through steps of any length."""

    def __init__(self, store: JobStore, job_id: str, worker: WorkerInfo, lease: float) -> None:
        super().__init__(name=f"painterly-heartbeat-{job_id[:6]}", daemon=True)
        self.store, self.job_id, self.worker, self.lease = store, job_id, worker, lease
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while not self._halt.wait(self.lease / 3):
                try:
                    self.store.register(self.worker)
                    if not self.store.renew(self.job_id, self.worker, self.lease):
                        return
                except (OSError, sqlite3.Error) as e:  # a full disk: the job pauses (run_job); beat on
                    if not disk_fault(e):
                        raise
        finally:
            self.store.close()

    def halt(self) -> None:
        self._halt.set()
        self.join(timeout=5)
