"""The durable job store: one SQLite row plus one folder per job.

Layout of a data directory::

    jobs.sqlite3            the queue (WAL mode; schema version in PRAGMA user_version)
    jobs/<id>/content.png   inputs, re-encoded by us (user file names are never used)
    jobs/<id>/style_0.png   ... one per style image
    jobs/<id>/config.json   the StyleConfig of the run
    jobs/<id>/notes.json    the front end's own notes (the studio's choices as a person made them)
    jobs/<id>/preview.jpg   the job's view: its latest image, the result once done (long side <= VIEW_SIDE)
    jobs/<id>/checkpoint.png  the image to resume from; its step is in the row
    jobs/<id>/result.png    the finished picture, written once
    jobs/<id>/log.txt       what happened, one line per event

A video job (``kind = 'video'``, ``submit_video``) has instead of the photo::

    jobs/<id>/clip          the uploaded clip, checked (``videoio.check_clip``) but kept as is: the
                            worker decodes it, and its audio goes into the result unchanged
    jobs/<id>/content.png   its first frame at the output size (thumbnails, the page's "made from")
    jobs/<id>/video.json    the VideoConfig of the run
    jobs/<id>/frames/       000001.png ... each finished frame, kept as it is made (the resume point)
    jobs/<id>/preview.jpg   the latest finished frame
    jobs/<id>/result.mp4    the finished video (H.264, the clip's audio), written once

For a video the row's ``step``/``steps`` count frames (finished / in the clip) and
``checkpoint_step`` is the number of frames kept in ``frames/``, so claiming, resuming,
"stop and keep" and recovery work as for a picture; the current frame's own step is in
``frame_step``/``frame_steps``.

Every file is private (0600, folders 0700: owner tokens and pictures are nobody else's) and
written atomically (``images.write_atomic``: temporary name, fsync, rename), a
new job's folder is complete before its row exists, and a result is written only by the
worker that holds the job, inside the transaction that marks it done, so a reader never
sees half a job and a finished result is never overwritten.

Connections are per thread and per process (SQLite connections must not be shared across
threads, nor survive a fork), so one JobStore may be used from the Streamlit script threads
and from several worker processes at once.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import errno
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Optional, Sequence, Union

from PIL import Image

from .. import images as im
from ..config import ConfigError, StyleConfig, VideoConfig
from ..plan import RunPlan
from . import health

Upload = Union[bytes, bytearray, Image.Image]

# The view (preview.jpg): what the pages show of a job, its latest image while it runs and the
# finished picture after; the picture itself is result.png, at full size, for the download. A
# print-size run's view is scaled down to this long side, so that no page ever decodes or sends
# a 4096-8192 px image, and a worker does not spend seconds encoding one twice a second (issue 10).
VIEW_SIDE = 2048
STATUSES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
SCHEMA_VERSION = 4
DB_NAME = "jobs.sqlite3"
KINDS = ("picture", "video")
CLIP, FRAMES, VIDEO_CONFIG, VIDEO_RESULT = "clip", "frames", "video.json", "result.mp4"

# secrets.token_urlsafe(16) gives 22 characters of [A-Za-z0-9_-]; anything else is not an id
# of ours and must never reach a file path. Job ids and the studio's owner tokens alike.
_ID_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_id() -> str:
    """An unguessable id (128 bits): a job's, or the studio's token for one browser."""
    return secrets.token_urlsafe(16)


def valid_id(value: object) -> bool:
    """Whether a value (from a URL, a caller) can be an id of ours: no paths, no markup."""
    return isinstance(value, str) and _ID_RE.fullmatch(value) is not None


_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- FIFO order
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        config TEXT NOT NULL,                    -- StyleConfig.to_json()
        n_styles INTEGER NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        created REAL NOT NULL,
        started REAL,
        finished REAL,
        updated REAL NOT NULL,
        step INTEGER NOT NULL DEFAULT 0,
        steps INTEGER NOT NULL,
        scale INTEGER NOT NULL DEFAULT 0,
        scales INTEGER NOT NULL,
        loss REAL NOT NULL DEFAULT 0,
        elapsed REAL NOT NULL DEFAULT 0,
        eta REAL,
        error TEXT NOT NULL DEFAULT '',
        stopped_early INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempts INTEGER NOT NULL DEFAULT 0,     -- claims that did not end cleanly count here
        checkpoint_step INTEGER NOT NULL DEFAULT 0,
        start_step INTEGER NOT NULL DEFAULT 0,   -- where the latest run started (resume)
        worker TEXT NOT NULL DEFAULT '',
        worker_host TEXT NOT NULL DEFAULT '',
        worker_pid INTEGER NOT NULL DEFAULT 0,
        lease_until REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX jobs_by_status ON jobs (status, seq);
    CREATE INDEX jobs_by_owner ON jobs (owner, seq);
    CREATE TABLE losses (
        job_id TEXT NOT NULL,
        step INTEGER NOT NULL,
        loss REAL NOT NULL,
        PRIMARY KEY (job_id, step)
    ) WITHOUT ROWID;
    """,
    # v2: live workers, so the studio can say when none is running and workers on one host
    # can share its cores instead of oversubscribing them.
    2: """
    CREATE TABLE workers (
        token TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started REAL NOT NULL,
        seen REAL NOT NULL
    );
    """,
    # v3: the precision the worker's engine resolved (precision.py), shown on the job's page.
    3: """
    ALTER TABLE jobs ADD COLUMN precision TEXT NOT NULL DEFAULT '';
    """,
    # v4: videos. Older rows are pictures; for a video step/steps count frames (see above).
    4: """
    ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'picture';
    ALTER TABLE jobs ADD COLUMN frame_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN frame_steps INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN frame_seconds REAL;
    """,
}


class StoreError(RuntimeError):
    """The data directory cannot be used (e.g. written by a newer painterly)."""


class LeaseLost(RuntimeError):
    """This worker no longer holds the job (it was presumed dead and the job handed on)."""


def default_data_dir() -> Path:
    """Where jobs live: ``$PAINTERLY_HOME``, else the user's data folder.

    Linux and others: ``$XDG_DATA_HOME/painterly`` or ``~/.local/share/painterly``;
    macOS: ``~/Library/Application Support/painterly``; Windows: ``%LOCALAPPDATA%\\painterly``.
    """
    home = os.environ.get("PAINTERLY_HOME")
    if home:
        return Path(home).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "painterly"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.environ.get("APPDATA")
        return (Path(base) if base else Path.home() / "AppData" / "Local") / "painterly"
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share") / "painterly"


@dataclass(frozen=True)
class Job:
    """A job as stored: what was asked, where it is, how it ended.

    Times are Unix epoch seconds. ``step``/``scale``/``loss``/``elapsed``/``eta`` are the
    latest progress (0/None before the first step). ``width``/``height`` are the output size.
    For a video (``kind == "video"``), ``step``/``steps`` are frames finished / frames in the
    clip, and ``frame_step``/``frame_steps`` the current frame's optimisation step.
    """

    id: str
    owner: str
    status: str  # queued | running | done | failed | cancelled
    config: StyleConfig
    created: float
    started: Optional[float]
    finished: Optional[float]
    step: int
    steps: int
    scale: int
    scales: int
    loss: float
    elapsed: float  # seconds of work so far, over all attempts
    eta: Optional[float]  # seconds left, while running
    error: str  # why it failed ("" otherwise)
    stopped_early: bool  # "stop and keep": done before the last step
    width: int
    height: int
    # Beyond the contract: for the studio's details and for the worker.
    n_styles: int = 1
    updated: float = 0.0  # last change of the row (progress, status)
    attempts: int = 0  # runs that did not end cleanly so far (a dead worker counts)
    checkpoint_step: int = 0  # step of checkpoint.png (0 = none)
    start_step: int = 0  # step the latest run started from (> 0 = resumed)
    cancel_requested: bool = False
    precision: str = ""  # what the engine ran in: fp32 | bf16 | fp16 ("" before the first step)
    kind: str = "picture"  # picture | video
    frame_step: int = 0  # a video: the current frame's step, of frame_steps
    frame_steps: int = 0
    frame_seconds: Optional[float] = None  # a video: seconds per frame after the first (None yet)

    @property
    def is_video(self) -> bool:
        return self.kind == "video"

    @property
    def active(self) -> bool:
        """Queued or running: still worth polling."""
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        """Progress in [0, 1]."""
        return 1.0 if self.status == "done" else min(1.0, self.step / max(1, self.steps))


class WorkerInfo(NamedTuple):
    """Who holds a job: a unique token, and the host and pid to tell whether it still lives."""

    token: str
    host: str
    pid: int

    @classmethod
    def current(cls) -> WorkerInfo:
        """A fresh identity for a worker in this process (threads get distinct tokens)."""
        host, pid = socket.gethostname(), os.getpid()
        return cls(f"{host}:{pid}:{secrets.token_hex(4)}", host, pid)


class JobStore:
    """Jobs in a data directory: submit and watch (the studio), claim and run (the workers).

    Args:
        data_dir: the folder holding ``jobs.sqlite3`` and ``jobs/``; created if missing.
            None means ``default_data_dir()``.
    """

    busy_timeout_ms = 30_000

    def __init__(self, data_dir: Union[Path, str, None] = None) -> None:
        self.data_dir = Path(data_dir if data_dir is not None else default_data_dir()).expanduser().resolve()
        self.jobs_dir = self.data_dir / "jobs"
        self.db_path = self.data_dir / DB_NAME
        self._local = threading.local()
        try:
            self.jobs_dir.mkdir(parents=True, exist_ok=True)
            _make_private(self.data_dir, self.jobs_dir, db=self.db_path)
        except OSError as e:
            raise StoreError(f"cannot use {self.data_dir} for jobs ({e}); set --data-dir or PAINTERLY_HOME") from None
        try:
            self._migrate()
        except sqlite3.Error as e:  # e.g. "unable to open database file" in a folder gone read-only
            raise StoreError(f"cannot use {self.data_dir} for jobs ({e}); set --data-dir or PAINTERLY_HOME") from None
        self._sweep_partial_submits()

    def __repr__(self) -> str:
        return f"JobStore({str(self.data_dir)!r})"

    # --- connections and schema ------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.db_path, timeout=self.busy_timeout_ms / 1000, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout_ms}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed "done" survives a power cut too; writes are throttled, so the
            # extra fsync per commit is cheap.
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes the lock up front (BEGIN IMMEDIATE), so two writers
        never both read "queued" and then both update."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        with self._tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.db_path} was written by a newer painterly (schema {version} > {SCHEMA_VERSION}); "
                    "upgrade painterly or use another --data-dir"
                )
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[v].split(";"):
                    if statement.strip():
                        c.execute(statement)
                c.execute(f"PRAGMA user_version = {v}")

    def _sweep_partial_submits(self, older_than: float = 3600.0) -> None:
        """Remove folders of submissions that died before their row was written."""
        now = time.time()
        for p in self.jobs_dir.glob(".new-*"):
            with contextlib.suppress(OSError):
                if now - p.stat().st_mtime > older_than:
                    shutil.rmtree(p, ignore_errors=True)

    # --- paths -------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        """The folder of a job id (which must look like one of ours: no path tricks)."""
        if not valid_id(job_id):
            raise KeyError(f"not a job id: {job_id!r}")
        return self.jobs_dir / job_id

    def _file(self, job_id: str, name: str) -> Optional[Path]:
        if self.get(job_id) is None:
            return None
        path = self.job_dir(job_id) / name
        return path if path.is_file() else None

    def preview_path(self, job_id: str) -> Optional[Path]:
        """The latest image of the job (``preview.jpg``), or None before the first one."""
        return self._file(job_id, "preview.jpg")

    def result_path(self, job_id: str) -> Optional[Path]:
        """The finished picture (``result.png``), or None until the job is done."""
        return self._file(job_id, "result.png")

    def log_path(self, job_id: str) -> Optional[Path]:
        """The job's ``log.txt``, or None."""
        return self._file(job_id, "log.txt")

    def video_path(self, job_id: str) -> Optional[Path]:
        """A video job's finished video (``result.mp4``), or None until it is done."""
        return self._file(job_id, VIDEO_RESULT)

    def clip_path(self, job_id: str) -> Optional[Path]:
        """A video job's uploaded clip, or None."""
        return self._file(job_id, CLIP)

    def frames_dir(self, job_id: str) -> Path:
        """The folder of a video job's finished frames (``videoio.frame_name`` names them)."""
        return self.job_dir(job_id) / FRAMES

    # --- the studio's side -----------------------------------------------------------------

    def submit(
        self,
        content: Upload,
        styles: Sequence[Upload],
        config: StyleConfig,
        owner: str = "",
        notes: Optional[dict] = None,
    ) -> str:
        """Validate and queue a job; return its (unguessable) id.

        The images are checked with ``images.load_image`` and re-encoded as PNG before
        anything is queued, so a bad upload raises ImageError (or ConfigError for settings
        that do not fit the images) and leaves no trace.

        Args:
            content: the photo, as uploaded bytes or a PIL image.
            styles: one or more paintings (a single bytes/image is accepted too).
            config: the run's settings; ``style_blend`` must match the number of styles.
            owner: an opaque token (the studio's browser id); ``list(owner)`` shows only these.
            notes: JSON-able facts the front end wants back with the job (``notes(id)``), such as
                the studio's "time limit" choice, which the config records only as steps.

        Raises:
            OSError: the disk is full (or nearly: ``health.MIN_FREE``) or the folder read-only
                (ENOSPC/EROFS, with words and no path); nothing is left behind.
        """
        if not isinstance(config, StyleConfig):
            raise TypeError(f"config must be a StyleConfig, got {type(config).__name__}")
        if not isinstance(owner, str):
            raise TypeError("owner must be a string")
        style_list = [styles] if isinstance(styles, (bytes, bytearray, Image.Image)) else list(styles)
        photo = _load_upload(content, "content image")
        plan = RunPlan.build(config, *photo.size, n_styles=len(style_list))
        paintings = [
            _load_upload(s, f"style image {i + 1}" if len(style_list) > 1 else "style image")
            for i, s in enumerate(style_list)
        ]
        plan.check_paintings(config, [p.size for p in paintings])
        return self._submit_checked(photo, paintings, config, owner, plan, notes)

    def submit_video(
        self,
        clip: Union[bytes, bytearray],
        styles: Sequence[Upload],
        config: StyleConfig,
        owner: str = "",
        notes: Optional[dict] = None,
        video: Optional[VideoConfig] = None,
    ) -> str:
        """Validate and queue a video job (a short clip, ``videoio.check_clip``); return its id.

        Like ``submit``: the clip is checked all the way through (the studio's own check, again
        at this boundary) and the paintings re-encoded before anything is queued, so a bad
        upload raises VideoError or ImageError (ConfigError for settings that do not fit) and
        leaves no trace. Frames are sized like a picture with ``config`` (``videoio.frame_size``).

        Args:
            clip: the uploaded video's bytes (any container ffmpeg reads; kept for its audio).
            video: how frames are chained (``VideoConfig``; its defaults when None).
        """
        from .. import videoio as vio

        if not isinstance(config, StyleConfig):
            raise TypeError(f"config must be a StyleConfig, got {type(config).__name__}")
        if not isinstance(clip, (bytes, bytearray)):
            raise TypeError(f"clip must be the uploaded bytes, got {type(clip).__name__}")
        if not isinstance(owner, str):
            raise TypeError("owner must be a string")
        video = video if video is not None else VideoConfig()
        if not isinstance(video, VideoConfig):
            raise TypeError(f"video must be a VideoConfig, got {type(video).__name__}")
        style_list = [styles] if isinstance(styles, (bytes, bytearray, Image.Image)) else list(styles)
        info, _ = vio.check_clip_bytes(clip)
        plan = RunPlan.build(config, info.width, info.height, n_styles=len(style_list))
        paintings = [
            _load_upload(s, f"style image {i + 1}" if len(style_list) > 1 else "style image")
            for i, s in enumerate(style_list)
        ]
        plan.check_paintings(config, [p.size for p in paintings])
        return self._submit_checked(None, paintings, config, owner, plan, notes, clip=(bytes(clip), info.frames, video))

    def _submit_checked(
        self,
        photo: Optional[Image.Image],
        paintings: builtins.list[Image.Image],
        config: StyleConfig,
        owner: str,
        plan: RunPlan,
        notes: Optional[dict],
        clip: Optional[tuple[bytes, int, VideoConfig]] = None,
    ) -> str:
        problem = health.disk_problem(self.data_dir)
        if problem is not None:  # keep what room is left for the jobs already queued
            raise OSError(errno.EROFS if problem == health.READ_ONLY else errno.ENOSPC, health.WORDS[problem])
        try:
            return self._queue(photo, paintings, config, owner, plan, notes, clip)
        except sqlite3.Error as e:
            if health.disk_fault(e):
                raise health.as_os_error(e) from None
            raise

    def _queue(
        self,
        photo: Optional[Image.Image],
        paintings: builtins.list[Image.Image],
        config: StyleConfig,
        owner: str,
        plan: RunPlan,
        notes: Optional[dict],
        clip: Optional[tuple[bytes, int, VideoConfig]] = None,
    ) -> str:
        """Write a checked job's folder, then its row (``submit``'s second half). A video's
        ``clip`` is (its bytes, its frames, its VideoConfig); its first frame is the photo."""
        width, height = plan.final_size
        kind, steps, what = "picture", config.steps, f"{config.steps} steps"

        job_id = new_id()
        tmp = self.jobs_dir / f".new-{job_id}"
        tmp.mkdir(mode=0o700)
        try:
            if clip is not None:
                from ..videoio import read_frames

                data, frames, video = clip
                kind, steps, what = "video", frames, f"{frames} frames, {config.steps} steps for the first"
                _write(tmp / CLIP, data)
                photo = read_frames(tmp / CLIP, (width, height), max_frames=1, name="video")[0]
                _write(tmp / VIDEO_CONFIG, (json.dumps(video.to_dict(), indent=2, sort_keys=True) + "\n").encode())
                (tmp / FRAMES).mkdir(mode=0o700)
            assert photo is not None
            _write(tmp / "content.png", im.encode_image(photo, "PNG"))
            for i, s in enumerate(paintings):
                _write(tmp / f"style_{i}.png", im.encode_image(s, "PNG"))
            _write(tmp / "config.json", (json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n").encode())
            if notes:
                _write(tmp / "notes.json", json.dumps(notes, sort_keys=True).encode())
            final = self.job_dir(job_id)
            os.replace(tmp, final)  # the folder appears complete, or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.log(job_id, f"submitted: {kind}, {width}x{height}, {what}, {len(paintings)} style image(s)")
        now = time.time()
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO jobs (id, owner, status, config, n_styles, width, height, created, updated, steps,"
                    " scales, kind)"
                    " VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        owner,
                        config.to_json(),
                        len(paintings),
                        width,
                        height,
                        now,
                        now,
                        steps,
                        len(plan.scales),
                        kind,
                    ),
                )
        except BaseException:
            shutil.rmtree(final, ignore_errors=True)
            raise
        return job_id

    def get(self, job_id: str) -> Optional[Job]:
        """The job, or None if there is no such id."""
        if not valid_id(job_id):
            return None
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row is not None else None

    def list(self, owner: str, *, limit: int = 200) -> builtins.list[Job]:
        """The owner's jobs, newest first (only that owner's: ids of others never show)."""
        rows = (
            self._conn()
            .execute("SELECT * FROM jobs WHERE owner = ? ORDER BY seq DESC LIMIT ?", (owner, limit))
            .fetchall()
        )
        return [_job(r) for r in rows]

    def notes(self, job_id: str) -> dict:
        """The ``notes`` given at submit ({} when none, or when unreadable: they are only hints)."""
        path = self._file(job_id, "notes.json")
        try:
            value = json.loads(path.read_bytes()) if path is not None else {}
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def delete(self, job_id: str, owner: str) -> bool:
        """Remove a finished job of ``owner`` (failed and cancelled count): its row, its loss
        points and its folder. Returns False, changing nothing, for another owner's job, an
        unknown id or a job still queued or running (stop it first: a worker may hold it)."""
        if not valid_id(job_id) or not owner:
            return False
        with self._tx() as c:
            c.execute(
                "DELETE FROM jobs WHERE id = ? AND owner = ? AND status NOT IN ('queued', 'running')", (job_id, owner)
            )
            if not c.execute("SELECT changes()").fetchone()[0]:
                return False
            c.execute("DELETE FROM losses WHERE job_id = ?", (job_id,))
        # The row is gone, so nothing reads the folder now. Renamed first so that a crash
        # mid-removal leaves a hidden folder for the sweep, not a job folder without a row.
        folder, gone = self.job_dir(job_id), self.jobs_dir / f".new-{job_id}-deleted"
        with contextlib.suppress(OSError):
            os.replace(folder, gone)
        shutil.rmtree(gone, ignore_errors=True)
        return True

    def cancel(self, job_id: str) -> None:
        """Stop a job, keeping what it has ("stop and keep").

        A running job ends at its next progress report as "done" with its current image
        and ``stopped_early=True``. A queued job becomes "cancelled" -- unless it already ran
        (its worker died and it waits to resume): then a worker finishes it from its
        checkpoint, as for a running job. Finished jobs are left alone.
        """
        now = time.time()
        with self._tx() as c:
            c.execute(
                """UPDATE jobs SET
                    status = CASE WHEN status = 'queued' AND checkpoint_step = 0 THEN 'cancelled' ELSE status END,
                    finished = CASE WHEN status = 'queued' AND checkpoint_step = 0 THEN :now ELSE finished END,
                    cancel_requested = 1, updated = :now
                   WHERE id = :id AND status IN ('queued', 'running')""",
                {"id": job_id, "now": now},
            )
            changed = c.execute("SELECT changes()").fetchone()[0]
        if changed:
            self.log(job_id, "stop requested")

    def queue_position(self, job_id: str) -> Optional[int]:
        """How many queued jobs run before this one (0 = next), or None if it is not queued."""
        job = self.get(job_id)
        if job is None or job.status != "queued":
            return None
        row = (
            self._conn()
            .execute(
                "SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND seq < (SELECT seq FROM jobs WHERE id = ?)",
                (job_id,),
            )
            .fetchone()
        )
        return int(row[0])

    def ahead(self, job_id: Optional[str] = None) -> builtins.list[Job]:
        """The jobs a picture waits for: every running job, then the queued ones before it, in
        queue order. With no ``job_id``, those a picture submitted now would wait for (all
        active jobs); for a job that is not queued, none."""
        args: tuple[str, ...] = ()
        if job_id is None:
            where = "status IN ('queued', 'running')"
        else:
            job = self.get(job_id)
            if job is None or job.status != "queued":
                return []
            where = "status = 'running' OR (status = 'queued' AND seq < (SELECT seq FROM jobs WHERE id = ?))"
            args = (job_id,)
        rows = self._conn().execute(f"SELECT * FROM jobs WHERE {where} ORDER BY status = 'queued', seq", args)
        return [_job(r) for r in rows]

    def loss_history(self, job_id: str) -> builtins.list[tuple[int, float]]:
        """[(step, loss)] for the loss curve, in step order."""
        rows = self._conn().execute("SELECT step, loss FROM losses WHERE job_id = ? ORDER BY step", (job_id,))
        return [(int(s), float(v)) for s, v in rows]

    def inputs(self, job_id: str) -> tuple[Image.Image, builtins.list[Image.Image]]:
        """The job's content and style images, as stored (raises ImageError if unreadable)."""
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id!r}")
        folder = self.job_dir(job_id)
        content = im.load_image(folder / "content.png", name="content image")
        styles = [im.load_image(folder / f"style_{i}.png", name="style image") for i in range(job.n_styles)]
        return content, styles

    # --- the workers' side -----------------------------------------------------------------

    def run_config(self, job_id: str) -> StyleConfig:
        """The job's config, read strictly: ConfigError (with the reason) if this version of
        painterly cannot run it exactly as asked (e.g. it was submitted by a newer one)."""
        row = self._conn().execute("SELECT config FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job {job_id!r}")
        try:
            return StyleConfig.from_record(json.loads(row[0]))
        except json.JSONDecodeError as e:
            raise ConfigError(f"the job's settings are unreadable ({e})") from None

    def video_config(self, job_id: str) -> VideoConfig:
        """A video job's VideoConfig, read strictly (ConfigError if this version cannot run it)."""
        try:
            return VideoConfig.from_record(json.loads((self.job_dir(job_id) / VIDEO_CONFIG).read_bytes()))
        except (OSError, ValueError, TypeError) as e:
            raise ConfigError(f"the job's video settings are unreadable ({e})") from None

    def claim(self, worker: WorkerInfo, lease: float) -> Optional[Job]:
        """Take the oldest queued job for ``worker`` (atomically: no two workers get one job)."""
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                """UPDATE jobs SET status = 'running', worker = ?, worker_host = ?, worker_pid = ?,
                       lease_until = ?, attempts = attempts + 1, started = COALESCE(started, ?),
                       start_step = checkpoint_step, step = checkpoint_step, eta = NULL, updated = ?
                   WHERE seq = (SELECT seq FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1)
                   RETURNING *""",
                (worker.token, worker.host, worker.pid, now + lease, now, now),
            ).fetchone()
        return _job(row) if row is not None else None

    def renew(self, job_id: str, worker: WorkerInfo, lease: float) -> bool:
        """Extend the worker's lease on a running job; False if it no longer holds it."""
        now = time.time()
        with self._tx() as c:
            c.execute(
                "UPDATE jobs SET lease_until = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (now + lease, job_id, worker.token),
            )
            return bool(c.execute("SELECT changes()").fetchone()[0])

    def record_progress(
        self,
        job_id: str,
        worker: WorkerInfo,
        *,
        step: int,
        steps: int,
        scale: int,
        scales: int,
        loss: float,
        elapsed: float,
        eta: Optional[float],
        losses: Sequence[tuple[int, float]],
        lease: float,
        precision: str = "",
        frame_step: int = 0,
        frame_steps: int = 0,
        frame_seconds: Optional[float] = None,
    ) -> bool:
        """Write progress and loss points, renew the lease; return True if a stop was asked.

        A video's ``step``/``steps`` are frames (finished / in the clip), with the current
        frame's step in ``frame_step``/``frame_steps`` and the time per frame in ``frame_seconds``.

        Raises LeaseLost if the worker no longer holds the job.
        """
        now = time.time()
        with self._tx() as c:
            row = c.execute(
                """UPDATE jobs SET step = ?, steps = ?, scale = ?, scales = ?, loss = ?, elapsed = ?, eta = ?,
                       lease_until = ?, updated = ?, precision = ?, frame_step = ?, frame_steps = ?,
                       frame_seconds = ?
                   WHERE id = ? AND status = 'running' AND worker = ? RETURNING cancel_requested""",
                (
                    step,
                    steps,
                    scale,
                    scales,
                    loss,
                    elapsed,
                    eta,
                    now + lease,
                    now,
                    precision,
                    frame_step,
                    frame_steps,
                    frame_seconds,
                    job_id,
                    worker.token,
                ),
            ).fetchone()
            if row is None:
                raise LeaseLost(job_id)
            # A resumed run repeats the steps after its checkpoint: REPLACE keeps one point per step.
            c.executemany(
                "INSERT OR REPLACE INTO losses (job_id, step, loss) VALUES (?, ?, ?)",
                [(job_id, s, v) for s, v in losses],
            )
        return bool(row[0])

    def save_preview(self, job_id: str, img: Image.Image) -> None:
        """Replace ``preview.jpg``, the job's view (atomically)."""
        _write(self.job_dir(job_id) / "preview.jpg", _view(img))

    def save_checkpoint(self, job_id: str, worker: WorkerInfo, img: Image.Image, step: int) -> None:
        """Store the image to resume from at ``step``: file first, then the row.

        A crash between the two leaves a newer image with the older step; resuming then
        repeats a few steps from a slightly better start, which is harmless.
        """
        data = im.encode_image(img, "PNG")
        _write(self.job_dir(job_id) / "checkpoint.png", data)
        with self._tx() as c:
            c.execute(
                "UPDATE jobs SET checkpoint_step = ?, updated = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (step, time.time(), job_id, worker.token),
            )
            if not c.execute("SELECT changes()").fetchone()[0]:
                raise LeaseLost(job_id)

    def checkpoint(self, job_id: str) -> Optional[tuple[Image.Image, int]]:
        """(image, step) to resume from, or None if there is none or it cannot be read."""
        job = self.get(job_id)
        if job is None or not job.checkpoint_step:
            return None
        try:
            return im.load_image(self.job_dir(job_id) / "checkpoint.png", name="checkpoint"), job.checkpoint_step
        except im.ImageError as e:
            self.log(job_id, f"checkpoint unusable, starting over: {e}")
            return None

    def finish(
        self, job_id: str, worker: WorkerInfo, img: Image.Image, *, stopped_early: bool, step: int, elapsed: float
    ) -> bool:
        """Write ``result.png`` and mark the job done; False (nothing written) if not ours.

        The file is written inside the transaction that checks ownership, so only the one
        holder of a running job ever writes its result, once.
        """
        png = im.encode_image(img, "PNG")  # encode before taking the lock
        jpg = _view(img)
        folder = self.job_dir(job_id)
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT status, worker FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != "running" or row["worker"] != worker.token:
                return False
            _write(folder / "result.png", png)
            _write(folder / "preview.jpg", jpg)
            c.execute(
                """UPDATE jobs SET status = 'done', finished = ?, updated = ?, step = ?, elapsed = ?, eta = 0,
                       stopped_early = ?, worker = '', lease_until = 0, error = '', checkpoint_step = 0
                   WHERE id = ?""",
                (now, now, step, elapsed, int(stopped_early), job_id),
            )
        # The checkpoint has served its purpose once the result is safely written.
        (folder / "checkpoint.png").unlink(missing_ok=True)
        self.log(
            job_id,
            f"done at step {step}"
            + (" (stopped early, as asked)" if stopped_early else "")
            + f" after {elapsed:.1f} s",
        )
        return True

    def keep_frame(self, job_id: str, worker: WorkerInfo, index: int, img: Image.Image) -> None:
        """Keep a video's finished frame ``index`` (0-based): its file in ``frames/``, the page's
        ``preview.jpg``, then the row's count of kept frames (a resume starts after them).

        File first, then the row, as for a checkpoint: a crash between the two leaves one more
        frame on disk than the row says, which the resume reads anyway (``finished_frames``).
        """
        from ..videoio import frame_name

        _write(self.frames_dir(job_id) / frame_name(index), im.encode_image(img, "PNG"))
        _write(self.job_dir(job_id) / "preview.jpg", im.encode_image(img, "JPEG", quality=90))
        with self._tx() as c:
            c.execute(
                "UPDATE jobs SET checkpoint_step = ?, updated = ? WHERE id = ? AND status = 'running' AND worker = ?",
                (index + 1, time.time(), job_id, worker.token),
            )
            if not c.execute("SELECT changes()").fetchone()[0]:
                raise LeaseLost(job_id)

    def kept_frames(self, job_id: str) -> builtins.list[Image.Image]:
        """A video job's finished frames, in order, up to the first missing or unreadable one."""
        from ..videoio import finished_frames

        return finished_frames(self.frames_dir(job_id))

    def finish_video(
        self, job_id: str, worker: WorkerInfo, encoded: Path, *, stopped_early: bool, frames: int, elapsed: float
    ) -> bool:
        """Put the encoded video (a file in the job's folder) in place as ``result.mp4`` and mark
        the job done; False (``encoded`` removed, nothing else changed) if the job is not ours.

        The rename happens inside the transaction that checks ownership, as for a picture, so
        only the one holder of a running job ever writes its result, once. The kept frames go
        afterwards (the video holds them); ``preview.jpg`` stays as the gallery's frame.
        """
        folder = self.job_dir(job_id)
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT status, worker FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row["status"] != "running" or row["worker"] != worker.token:
                encoded.unlink(missing_ok=True)
                return False
            os.replace(encoded, folder / VIDEO_RESULT)
            c.execute(
                """UPDATE jobs SET status = 'done', finished = ?, updated = ?, step = ?, elapsed = ?, eta = 0,
                       stopped_early = ?, worker = '', lease_until = 0, error = '', checkpoint_step = 0
                   WHERE id = ?""",
                (now, now, frames, elapsed, int(stopped_early), job_id),
            )
        shutil.rmtree(folder / FRAMES, ignore_errors=True)
        self.log(
            job_id,
            f"done: {frames} frames"
            + (" (stopped early, as asked)" if stopped_early else "")
            + f" after {elapsed:.1f} s",
        )
        return True

    def fail(self, job_id: str, worker: WorkerInfo, reason: str) -> bool:
        """Mark the worker's job failed with a human-readable reason."""
        with self._tx() as c:
            changed = _release(c, job_id, "failed", reason=reason, worker=worker)
        if changed:
            self.log(job_id, f"failed: {reason}")
        return changed

    def requeue(self, job_id: str, worker: WorkerInfo, reason: str) -> bool:
        """Give a running job back to the queue after a clean stop (not counted as a failure)."""
        with self._tx() as c:
            changed = _release(c, job_id, "queued", worker=worker, clean=True)
        if changed:
            self.log(job_id, f"back in the queue: {reason}")
        return changed

    def register(self, worker: WorkerInfo, *, gone: bool = False) -> None:
        """Note a worker as alive now (or, with ``gone``, remove it)."""
        now = time.time()
        with self._tx() as c:
            # Rows of workers killed long ago (they could not say goodbye) go too.
            c.execute("DELETE FROM workers WHERE seen < ?", (now - 86400,))
            if gone:
                c.execute("DELETE FROM workers WHERE token = ?", (worker.token,))
            else:
                c.execute(
                    "INSERT INTO workers (token, host, pid, started, seen) VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (token) DO UPDATE SET seen = excluded.seen",
                    (worker.token, worker.host, worker.pid, now, now),
                )

    def workers(self, *, within: float = 60.0) -> builtins.list[WorkerInfo]:
        """Workers seen in the last ``within`` seconds whose process still exists (same host)."""
        rows = (
            self._conn()
            .execute("SELECT token, host, pid FROM workers WHERE seen >= ? ORDER BY started", (time.time() - within,))
            .fetchall()
        )
        host = socket.gethostname()
        return [WorkerInfo(*r) for r in rows if r["host"] != host or _pid_alive(r["pid"])]

    def recover_stale(self, max_attempts: int = 3) -> builtins.list[str]:
        """Hand on running jobs whose worker is gone; return their ids.

        A worker is gone when its lease has expired, or at once when it ran on this host and
        its process no longer exists. The job goes back to the front of the queue to resume
        from its checkpoint, or fails with the reason after ``max_attempts`` such deaths.
        """
        now = time.time()
        host = socket.gethostname()
        rows = (
            self._conn()
            .execute("SELECT id, worker, worker_host, worker_pid, lease_until, kind FROM jobs WHERE status = 'running'")
            .fetchall()
        )
        dead = [
            r for r in rows if r["lease_until"] < now or (r["worker_host"] == host and not _pid_alive(r["worker_pid"]))
        ]
        recovered = []
        for r in dead:
            with self._tx() as c:
                # Re-check under the lock: the worker may have finished or renewed meanwhile.
                cur = c.execute(
                    "SELECT attempts, checkpoint_step, step, worker, lease_until FROM jobs"
                    " WHERE id = ? AND status = 'running'",
                    (r["id"],),
                ).fetchone()
                if cur is None or cur["worker"] != r["worker"] or cur["lease_until"] > r["lease_until"]:
                    continue
                if cur["attempts"] >= max_attempts:
                    reason = (
                        f"the worker running this job stopped unexpectedly {cur['attempts']} times "
                        "(killed, out of memory, or the machine restarted); try a smaller size or fewer steps"
                    )
                    _release(c, r["id"], "failed", reason=reason)
                    message = f"failed: {reason}"
                else:
                    _release(c, r["id"], "queued")
                    ck = cur["checkpoint_step"]
                    if r["kind"] == "video":
                        message = f"worker {r['worker']} stopped with {ck} frame(s) kept; queued again to resume " + (
                            f"at frame {ck + 1}" if ck else "from the first frame"
                        )
                    else:
                        message = f"worker {r['worker']} stopped at step {cur['step']}; queued again to resume " + (
                            f"from the checkpoint at step {ck}" if ck else "from the start (no checkpoint yet)"
                        )
            # A worker killed mid-write leaves its half-written temporary file (the rename
            # never happened, so the real file is intact); tidy it away.
            folder = self.job_dir(r["id"])
            if folder.is_dir():
                for tmp in folder.glob(".*.tmp"):
                    tmp.unlink(missing_ok=True)
            recovered.append(r["id"])
            self.log(r["id"], message)
        return recovered

    def log(self, job_id: str, message: str) -> None:
        """Append a timestamped line to the job's ``log.txt`` (append-only, one write per line)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        line = f"{stamp} [{os.getpid()}] {message}".replace("\r", " ")
        with contextlib.suppress(OSError, KeyError):  # a log line must never break the job
            fd = os.open(self.job_dir(job_id) / "log.txt", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(fd, "a", encoding="utf-8") as f:
                f.write(line + "\n")


# --- helpers ------------------------------------------------------------------------------


def _make_private(*folders: Path, db: Path) -> None:
    """Only the studio's own account may read the jobs: folders 0700, the database 0600.

    Each browser's owner token (the only key to its gallery) and every picture live here, so
    they are private whatever the umask. A folder made by an older version with 0755 is
    tightened too. SQLite gives its -wal and -shm files the database file's mode.
    """
    for path in folders:
        _tighten(path, 0o700)
    os.close(os.open(db, os.O_RDWR | os.O_CREAT, 0o600))
    _tighten(db, 0o600)


def _tighten(path: Path, mode: int) -> None:
    st = path.stat()
    # Only our own: a folder another account shares with us is theirs to set.
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        path.chmod(mode)


def _view(img: Image.Image) -> bytes:
    """The JPEG of a job's view: ``img`` with its long side at most VIEW_SIDE."""
    view = im.resize_long_side(img, VIEW_SIDE) if max(img.size) > VIEW_SIDE else img
    return im.encode_image(view, "JPEG", quality=90)


def _write(path: Path, data: bytes) -> None:
    """Every file of a job: atomic (write, fsync, rename) and private (0600)."""
    im.write_atomic(path, data, private=True)


def _release(
    c: sqlite3.Connection,
    job_id: str,
    status: str,
    *,
    reason: str = "",
    worker: Optional[WorkerInfo] = None,
    clean: bool = False,
) -> bool:
    """Let go of a running job, inside the caller's transaction: back to the queue, or
    "failed" with ``reason``. With ``worker``, only if that worker still holds it; ``clean``
    (a clean stop) does not count the run as an attempt. Returns whether the row changed."""
    sets = "status = :status, eta = NULL, updated = :now, worker = '', lease_until = 0"
    if status == "failed":
        sets += ", error = :reason, finished = :now"
    if clean:
        sets += ", attempts = MAX(0, attempts - 1)"
    where = "id = :id AND status = 'running'" + (" AND worker = :worker" if worker is not None else "")
    c.execute(
        f"UPDATE jobs SET {sets} WHERE {where}",
        {
            "status": status,
            "now": time.time(),
            "reason": reason,
            "id": job_id,
            "worker": worker.token if worker is not None else "",
        },
    )
    return bool(c.execute("SELECT changes()").fetchone()[0])


def _load_upload(source: Upload, name: str) -> Image.Image:
    """An upload as RGB, or ImageError (size cap first, then Pillow's checks)."""
    if isinstance(source, (bytes, bytearray)):
        im.check_upload_size(source, name)  # the studio's check, again at the trust boundary
    if not isinstance(source, (bytes, bytearray, Image.Image)):
        raise im.ImageError(f"{name}: expected uploaded bytes or an image, got {type(source).__name__}")
    return im.load_image(bytes(source) if isinstance(source, bytearray) else source, name=name)


_CONFIG_FIELDS = {f.name for f in dataclasses.fields(StyleConfig)}


def _lenient_config(text: str) -> StyleConfig:
    """A stored config for display: options this version does not know are dropped, and a
    record that still does not validate shows as the defaults (the worker's strict read,
    ``JobStore.run_config``, fails such a job with the reason instead of running it)."""
    try:
        return StyleConfig.from_record(json.loads(text))
    except (ConfigError, ValueError, TypeError):
        try:
            return StyleConfig.from_record({k: v for k, v in json.loads(text).items() if k in _CONFIG_FIELDS})
        except (ConfigError, ValueError, TypeError, AttributeError):
            return StyleConfig()


def _pid_alive(pid: int) -> bool:
    """Whether a process exists on this host (POSIX); True when we cannot tell."""
    if pid <= 0 or os.name != "posix":
        return True  # Windows: os.kill(pid, 0) would send CTRL_C; rely on the lease there
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_JOB_FIELDS = {f.name for f in dataclasses.fields(Job)}


def _job(row: sqlite3.Row) -> Job:
    data = {k: row[k] for k in row.keys() if k in _JOB_FIELDS}
    data["config"] = _lenient_config(row["config"])
    data["stopped_early"] = bool(row["stopped_early"])
    data["cancel_requested"] = bool(row["cancel_requested"])
    return Job(**data)
