"""The job store and worker for real: SQLite on disk, the real engine on tiny images, real processes.

Configs use threads=1: on a shared 2-core machine, OpenMP threads that oversubscribe the CPU
make a tiny step tens of times slower.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from painterly import images as im
from painterly.config import ConfigError, StyleConfig
from painterly.images import ImageError
from painterly.jobs import Job, JobStore, StoreError, WorkerInfo, default_data_dir, run_worker
from painterly.jobs.store import SCHEMA_VERSION
from polling import wait_for


def cfg(steps: int = 6, **kw) -> StyleConfig:
    # The Gram loss: these tests are about the queue, and W2's 512x512 eigendecompositions cost
    # the same at 32 px as at 512 px (0.6 s a step here, 50x the Gram step at this size).
    kw = {"size": 32, "steps": steps, "scales": 1, "preview_every": 2, "threads": 1, "style_loss": "gram", **kw}
    return StyleConfig(**kw)


def png(img: Image.Image) -> bytes:
    return im.encode_image(img, "PNG")


def temp_leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".new-")]


@pytest.fixture
def store(tmp_path) -> JobStore:
    return JobStore(tmp_path / "data")


@pytest.fixture
def submit(store, content_img, style_img):
    def _submit(config: StyleConfig | None = None, owner: str = "me") -> str:
        return store.submit(png(content_img), [png(style_img)], config or cfg(), owner=owner)

    return _submit


class WorkerThread:
    """run_worker in a thread, stoppable, re-raising what it raised."""

    def __init__(self, data_dir: Path, **kw) -> None:
        self.stop = threading.Event()
        self.result: list = []
        kw.setdefault("poll", 0.05)
        self.thread = threading.Thread(target=self._run, args=(data_dir, kw), daemon=True)
        self.thread.start()

    def _run(self, data_dir, kw) -> None:
        try:
            self.result.append(run_worker(data_dir, stop=self.stop, **kw))
        except BaseException as e:  # surfaced by join()
            self.result.append(e)

    def join(self, timeout: float = 90.0, *, stop: bool = True):
        if stop:
            self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"
        if isinstance(self.result[0], BaseException):
            raise self.result[0]
        return self.result[0]


# --- the store ----------------------------------------------------------------------------


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PAINTERLY_HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home"
    monkeypatch.delenv("PAINTERLY_HOME")
    if sys.platform.startswith("linux"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_data_dir() == tmp_path / "xdg" / "painterly"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert default_data_dir() == Path.home() / ".local" / "share" / "painterly"
    monkeypatch.setenv("PAINTERLY_HOME", str(tmp_path / "env"))
    assert JobStore().data_dir == (tmp_path / "env").resolve()


def test_database_is_wal_and_versioned(store):
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer painterly"):
        JobStore(store.data_dir)


def test_submit_get_list_and_owner_isolation(store, content_img, style_img):
    config = cfg(steps=5, style_blend=(1.0, 2.0))
    a = store.submit(png(content_img), [png(style_img), style_img], config, owner="alice")
    b = store.submit(content_img, [png(style_img)], cfg(), owner="bob")
    a2 = store.submit(png(content_img), png(style_img), cfg(), owner="alice")  # one style, not in a list
    assert len({a, b, a2}) == 3 and all(len(i) >= 22 for i in (a, b, a2))

    job = store.get(a)
    assert isinstance(job, Job)
    assert (job.id, job.owner, job.status, job.config) == (a, "alice", "queued", config)
    assert (job.width, job.height) == (32, 21)  # 48x32 content, long side 32, aspect kept
    assert (job.step, job.steps, job.started, job.finished, job.eta, job.error) == (0, 5, None, None, None, "")
    assert job.created <= time.time() and not job.stopped_early and job.n_styles == 2

    assert [j.id for j in store.list("alice")] == [a2, a]  # newest first, only alice's
    assert [j.id for j in store.list("bob")] == [b]
    assert store.list("mallory") == []

    content, styles = store.inputs(a)
    assert content.size == content_img.size and [s.size for s in styles] == [style_img.size] * 2
    assert content.tobytes() == content_img.tobytes()  # stored losslessly
    folder = store.job_dir(a)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "content.png",
        "log.txt",
        "style_0.png",
        "style_1.png",
    ]
    assert StyleConfig.from_dict(__import__("json").loads((folder / "config.json").read_text())) == config
    assert store.preview_path(a) is None and store.result_path(a) is None and store.loss_history(a) == []


def test_ids_never_reach_the_file_system(store, submit):
    submit()
    for bad in ("../../etc", "..", "a/b" * 10, "", "x" * 200):
        assert store.get(bad) is None
        assert store.preview_path(bad) is None and store.result_path(bad) is None
        assert store.queue_position(bad) is None
        store.cancel(bad)  # a no-op, not an error
    assert store.get("A" * 22) is None  # well-formed but unknown


def test_bad_uploads_are_refused_before_anything_is_queued(store, content_img, style_img, monkeypatch):
    good = png(content_img)
    truncated = good[: len(good) // 2]
    cases = [
        (b"this is not an image", [png(style_img)], ImageError, "content image: not an image"),
        (good, [truncated], ImageError, "style image: the file is damaged"),
        (good, [b""], ImageError, "empty"),
        (good, [], ImageError, "at least one painting"),
        (good, [png(style_img)] * 2, ConfigError, "style_blend"),
    ]
    for content, styles, error, message in cases:
        config = cfg(style_blend=(1.0,)) if error is ConfigError else cfg()
        with pytest.raises(error, match=message):
            store.submit(content, styles, config, owner="me")
    monkeypatch.setattr(im, "MAX_INPUT_BYTES", 1000)
    with pytest.raises(ImageError, match="upload limit"):
        store.submit(good, [png(style_img)], cfg(), owner="me")
    assert store.list("me") == []
    assert list(store.jobs_dir.iterdir()) == []  # not even a folder


def test_fifo_claim_and_queue_positions(store, submit):
    ids = [submit() for _ in range(3)]
    assert [store.queue_position(i) for i in ids] == [0, 1, 2]
    w = WorkerInfo.current()
    first = store.claim(w, lease=30)
    assert first.id == ids[0] and first.status == "running" and first.attempts == 1 and first.started
    assert store.queue_position(ids[0]) is None
    assert [store.queue_position(i) for i in ids[1:]] == [0, 1]
    assert [store.claim(w, lease=30).id for _ in range(2)] == ids[1:]
    assert store.claim(w, lease=30) is None


def test_what_a_picture_waits_for(store, submit):
    ids = [submit(owner=f"someone-{i}") for i in range(3)]
    store.claim(WorkerInfo.current(), lease=30)  # the first one runs
    # Every owner's jobs count (only their plans are used), the running one first, then the queue.
    assert [j.id for j in store.ahead()] == ids  # a picture submitted now waits for all three
    assert [j.id for j in store.ahead(ids[2])] == ids[:2]
    assert [j.id for j in store.ahead(ids[1])] == ids[:1]
    assert store.ahead(ids[0]) == [] and store.ahead("no-such-job-000000") == []


def test_concurrent_submissions_from_threads(store, content_img, style_img):
    content, style = png(content_img), png(style_img)
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def user(n: int) -> None:
        try:
            barrier.wait()
            for _ in range(5):
                ids.append(store.submit(content, [style], cfg(), owner=f"user{n}"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 20
    assert all(len(store.list(f"user{n}")) == 5 for n in range(4))
    assert sorted(store.queue_position(i) for i in ids) == list(range(20))


def _claim_all(data_dir: str) -> list[str]:
    """In a separate process: claim until the queue is empty."""
    store, me, got = JobStore(data_dir), WorkerInfo.current(), []
    while (job := store.claim(me, lease=60)) is not None:
        got.append(job.id)
    return got


def test_concurrent_claims_never_share_a_job(store, submit):
    ids = {submit() for _ in range(24)}
    # Threads (one connection each) ...
    claimed: list[str] = []
    barrier = threading.Barrier(6)

    def grab() -> None:
        me = WorkerInfo.current()
        barrier.wait()
        for _ in range(3):
            job = store.claim(me, lease=60)
            if job is not None:
                claimed.append(job.id)

    threads = [threading.Thread(target=grab) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == len(set(claimed)) == 18
    # ... and processes.
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        per_process = pool.map(_claim_all, [str(store.data_dir)] * 3)
    rest = [i for got in per_process for i in got]
    assert len(rest) == len(set(rest)) == 6
    assert set(claimed) | set(rest) == ids


def test_cancel_a_queued_job(store, submit):
    a, b = submit(), submit()
    store.cancel(a)
    job = store.get(a)
    assert job.status == "cancelled" and job.finished is not None
    assert store.queue_position(b) == 0
    assert run_worker(store.data_dir, once=True) == 1  # only b runs
    assert store.get(a).status == "cancelled" and store.result_path(a) is None
    assert store.get(b).status == "done"
    store.cancel(b)  # finished jobs are left alone
    assert store.get(b).status == "done" and not store.get(b).stopped_early


# --- the worker with the real engine -------------------------------------------------------


def test_worker_runs_a_job_and_writes_progress_preview_and_losses(store, submit):
    config = cfg(steps=12, scales=2, size=48)
    job_id = submit(config)
    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done", job.error
    assert (job.step, job.scale, job.scales) == (12, 2, 2)
    assert job.started <= job.finished and job.elapsed > 0 and job.eta == 0 and not job.stopped_early
    assert job.loss > 0 and job.attempts == 1
    history = store.loss_history(job_id)
    assert [s for s, _ in history] == list(range(1, 13))
    assert all(v > 0 for _, v in history)
    with Image.open(store.result_path(job_id)) as result:
        assert result.format == "PNG" and result.size == (job.width, job.height) == (48, 32)
    with Image.open(store.preview_path(job_id)) as preview:
        assert preview.format == "JPEG" and preview.size == (48, 32)
    assert not (store.job_dir(job_id) / "checkpoint.png").exists()  # not needed once done
    log = store.log_path(job_id).read_text()
    assert "submitted" in log and "started by" in log and "done at step 12" in log
    assert temp_leftovers(store.data_dir) == []


def test_everything_in_the_data_folder_is_private_whatever_the_umask(tmp_path, content_img, style_img):
    old = os.umask(0o022)  # the usual umask: files 644, folders 755 unless the store says otherwise
    try:
        data = tmp_path / "data"
        data.mkdir(mode=0o755)  # made by an older version, or by hand: tightened on open
        store = JobStore(data)
        job_id = store.submit(png(content_img), [png(style_img)], cfg(steps=2), owner="me")
        assert run_worker(data, once=True) == 1
        assert store.get(job_id).status == "done"
    finally:
        os.umask(old)
    modes = {p.relative_to(data).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in [data, *data.rglob("*")]}
    folders = {name for name in modes if (data / name).is_dir()}
    files = set(modes) - folders
    assert {
        "jobs.sqlite3",
        f"jobs/{job_id}/result.png",
        f"jobs/{job_id}/log.txt",
        f"jobs/{job_id}/content.png",
    } <= files
    assert {n: m for n, m in modes.items() if n in folders and m != 0o700} == {}
    assert {n: m for n, m in modes.items() if n in files and m != 0o600} == {}


def test_progress_is_visible_while_running(store, submit):
    job_id = submit(cfg(steps=400))
    worker = WorkerThread(store.data_dir)
    try:
        # Progress, an estimate and a preview appear in the row and the folder mid-run.
        job = wait_for(lambda: (j := store.get(job_id)).step >= 6 and j.eta is not None and j)
        assert job.status == "running" and job.eta > 0 and job.elapsed > 0
        wait_for(lambda: store.preview_path(job_id))
        assert len(store.loss_history(job_id)) >= 1
        with Image.open(store.preview_path(job_id)) as preview:
            assert preview.size == (job.width, job.height)
        later = wait_for(lambda: (j := store.get(job_id)).step > job.step + 2 and j)
        assert later.elapsed > job.elapsed
    finally:
        store.cancel(job_id)
        worker.join()


def test_stop_and_keep_a_running_job(store, submit):
    job_id = submit(cfg(steps=2000))
    worker = WorkerThread(store.data_dir)
    wait_for(lambda: store.get(job_id).step >= 4)
    store.cancel(job_id)
    job = wait_for(lambda: (j := store.get(job_id)).status == "done" and j)
    assert worker.join() == 1
    assert job.stopped_early and 4 <= job.step < 2000 and job.error == ""
    with Image.open(store.result_path(job_id)) as result:
        assert result.size == (job.width, job.height)


def test_worker_stop_hands_the_job_back_and_the_next_worker_resumes(store, submit):
    job_id = submit(cfg(steps=60))
    worker = WorkerThread(store.data_dir)
    wait_for(lambda: store.get(job_id).step >= 5)
    worker.stop.set()
    assert worker.join() == 1
    paused = store.get(job_id)
    assert paused.status == "queued" and paused.checkpoint_step >= 5 and paused.attempts == 0
    assert (store.job_dir(job_id) / "checkpoint.png").is_file()

    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done" and job.step == 60 and not job.stopped_early
    assert job.start_step == paused.checkpoint_step  # resumed, not restarted
    assert f"resuming from the checkpoint at step {paused.checkpoint_step}/60" in store.log_path(job_id).read_text()
    assert [s for s, _ in store.loss_history(job_id)] == list(range(1, 61))


def test_two_workers_share_the_queue_without_overlap(store, submit):
    ids = [submit(cfg(steps=4)) for _ in range(4)]
    workers = [WorkerThread(store.data_dir, once=True) for _ in range(2)]
    taken = [w.join(stop=False) for w in workers]
    assert sum(taken) == 4
    for job_id in ids:
        job = store.get(job_id)
        assert job.status == "done" and job.attempts == 1, (job.status, job.error)
        assert store.log_path(job_id).read_text().count("started by") == 1


def test_missing_or_corrupt_inputs_fail_with_a_reason(store, submit):
    corrupt, gone = submit(), submit()
    (store.job_dir(corrupt) / "content.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (store.job_dir(gone) / "style_0.png").unlink()
    assert run_worker(store.data_dir, once=True) == 2
    a, b = store.get(corrupt), store.get(gone)
    assert a.status == "failed" and "content image" in a.error and "cannot be read" in a.error
    assert b.status == "failed" and "style image" in b.error and "no such file" in b.error
    assert store.result_path(corrupt) is None and a.finished is not None


def test_dead_worker_lease_expiry_requeues_then_fails_after_max_attempts(store, submit):
    job_id = submit()
    ghost = WorkerInfo("elsewhere:1:ghost", "elsewhere", 1)  # another host: only its lease tells
    for attempt in (1, 2):
        assert store.claim(ghost, lease=30).id == job_id
        assert store.recover_stale(max_attempts=3) == []  # lease still valid
        store.renew(job_id, ghost, lease=-1)  # the ghost's lease runs out
        assert store.recover_stale(max_attempts=3) == [job_id]
        job = store.get(job_id)
        assert job.status == "queued" and job.attempts == attempt
    assert store.claim(ghost, lease=-1).id == job_id
    assert store.recover_stale(max_attempts=3) == [job_id]
    job = store.get(job_id)
    assert job.status == "failed" and "stopped unexpectedly 3 times" in job.error
    assert "failed: the worker running this job stopped unexpectedly" in store.log_path(job_id).read_text()


def test_a_result_is_written_once_by_the_holder_only(store, submit, content_img):
    job_id = submit()
    old, new = WorkerInfo("elsewhere:1:old", "elsewhere", 1), WorkerInfo.current()
    store.claim(old, lease=-1)
    store.recover_stale()
    store.claim(new, lease=30)
    red, blue = Image.new("RGB", (32, 21), "red"), Image.new("RGB", (32, 21), "blue")
    assert store.finish(job_id, new, red, stopped_early=False, step=6, elapsed=1.0)
    assert not store.finish(job_id, old, blue, stopped_early=False, step=6, elapsed=1.0)  # the presumed dead
    assert not store.finish(job_id, new, blue, stopped_early=False, step=6, elapsed=1.0)  # done is final
    with Image.open(store.result_path(job_id)) as result:
        assert result.getpixel((0, 0)) == (255, 0, 0)


_KILLABLE_WORKER = """
import sys
from painterly.jobs import run_worker
run_worker(sys.argv[1], poll=0.05, checkpoint_every=0.2)
"""


def test_worker_killed_mid_job_resumes_from_checkpoint(store, submit, tmp_path):
    steps = 150
    job_id = submit(cfg(steps=steps))
    proc = subprocess.Popen([sys.executable, "-c", _KILLABLE_WORKER, str(store.data_dir)])
    try:
        job = wait_for(lambda: (j := store.get(job_id)).checkpoint_step >= 4 and j.step > j.checkpoint_step and j)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    killed = store.get(job_id)
    assert killed.status == "running" and killed.step < steps  # left behind by the dead worker

    # A new worker notices at once (same host, process gone) and resumes from the checkpoint;
    # watch the row to see the first step it reports.
    seen: list[int] = []
    t0 = time.time()
    worker = WorkerThread(store.data_dir, once=True)
    while worker.thread.is_alive():
        j = store.get(job_id)
        if j.updated > t0 and j.status == "running" and j.attempts == 2:
            seen.append(j.step)
        time.sleep(0.005)
    assert worker.join(stop=False) == 1
    job = store.get(job_id)
    assert job.status == "done" and job.step == steps and not job.stopped_early, job.error
    assert job.attempts == 2 and job.start_step == killed.checkpoint_step >= 4
    assert seen and min(seen) >= job.start_step and max(seen) > job.start_step  # resumed, not restarted
    log = store.log_path(job_id).read_text()
    assert f"queued again to resume from the checkpoint at step {job.start_step}" in log
    assert f"resuming from the checkpoint at step {job.start_step}/{steps}" in log
    assert [s for s, _ in store.loss_history(job_id)] == list(range(1, steps + 1))
    with Image.open(store.result_path(job_id)) as result:
        assert result.size == (job.width, job.height)
    assert temp_leftovers(store.data_dir) == []


def test_the_view_of_a_big_picture_is_scaled_down_and_the_result_is_full_size(store, submit, monkeypatch):
    # A print-size picture's pages show a view (preview.jpg) of at most VIEW_SIDE; the download
    # (result.png) keeps every pixel. VIEW_SIDE made small so that a tiny run shows it.
    import painterly.jobs.store as store_module

    monkeypatch.setattr(store_module, "VIEW_SIDE", 24)
    seen: list[tuple[int, int]] = []
    save = JobStore.save_preview

    def watch(self, job_id, img):
        save(self, job_id, img)
        with Image.open(self.preview_path(job_id)) as view:
            seen.append(view.size)

    monkeypatch.setattr(JobStore, "save_preview", watch)
    job_id = submit(cfg(steps=4, size=48, preview_every=1))
    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done", job.error
    with Image.open(store.result_path(job_id)) as result:
        assert result.size == (job.width, job.height) == (48, 32)
    with Image.open(store.preview_path(job_id)) as view:
        assert view.format == "JPEG" and view.size == (24, 16)
    assert seen and set(seen) == {(24, 16)}  # while it ran, too


def test_worker_cli_once(store, submit, capsys):
    from painterly.cli import main

    job_id = submit()
    assert main(["worker", "--data-dir", str(store.data_dir), "--once"]) == 0
    job = store.get(job_id)
    assert job.status == "done" and store.result_path(job_id) is not None


def test_import_does_not_load_torch():
    code = "import sys, painterly.jobs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ})
    assert out.stdout.strip() == "False"


def test_a_config_this_version_cannot_run_fails_with_the_reason(store, submit):
    job_id = submit()
    conn = sqlite3.connect(store.db_path)
    with conn:
        conn.execute("UPDATE jobs SET config = json_set(config, '$.brush', 3) WHERE id = ?", (job_id,))
    conn.close()
    assert store.get(job_id).config == cfg()  # still shown (unknown options dropped) ...
    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)  # ... but not run as something it was not
    assert job.status == "failed" and "unknown option(s): brush" in job.error


def test_a_job_stored_before_an_option_existed_runs_as_it_was_asked(store, submit):
    """A job queued (or checkpointed) by an earlier version lacks the options added since: it is
    read with the value that reproduces that version's run (config.ADDED_OPTIONS), not today's
    default, so a job resumed across an upgrade keeps its rule mid-run."""
    fine = cfg(content_fine=1.0)  # below 512 px content_fine changes the picture
    old, new = submit(fine), submit(fine)
    conn = sqlite3.connect(store.db_path)
    with conn:
        conn.execute("UPDATE jobs SET config = json_remove(config, '$.content_fine') WHERE id = ?", (old,))
    conn.close()
    assert store.run_config(old) == fine.replace(content_fine=0.0) == store.get(old).config
    with sqlite3.connect(store.db_path) as conn:  # a record from before the loss and precision options too
        conn.execute("UPDATE jobs SET config = json_remove(config, '$.style_loss', '$.precision') WHERE id = ?", (old,))
    assert store.run_config(old) == fine.replace(content_fine=0.0, style_loss="gram", precision="fp32")
    assert store.run_config(new) == fine == store.get(new).config  # a whole record is read as written
    assert StyleConfig.from_dict({}).content_fine == StyleConfig().content_fine  # options typed by a user: defaults


# --- Ray (optional extra) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray", reason="Ray is optional: pip install 'painterly[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_runs_jobs_remotely_with_progress_and_stop(store, submit, ray_cluster, monkeypatch):
    import painterly.stylize

    def not_here(*args, **kwargs):
        raise AssertionError("stylize ran in the worker process, not on Ray")

    # The worker process cannot run the engine: a job done proves it ran in a Ray task.
    monkeypatch.setattr(painterly.stylize, "stylize", not_here)
    short, long = submit(cfg(steps=8)), submit(cfg(steps=3000))
    worker = WorkerThread(store.data_dir, executor="ray", threads=1)
    try:
        wait_for(lambda: store.get(long).step >= 4, timeout=180)
        store.cancel(long)
        wait_for(lambda: store.get(long).status == "done", timeout=60)
    finally:
        assert worker.join() == 2
    a, b = store.get(short), store.get(long)
    assert a.status == "done" and a.step == 8 and not a.stopped_early, a.error
    assert [s for s, _ in store.loss_history(short)] == list(range(1, 9))
    assert b.status == "done" and b.stopped_early and 4 <= b.step < 3000
    for job in (a, b):
        assert store.preview_path(job.id) is not None
        with Image.open(store.result_path(job.id)) as result:
            assert result.size == (job.width, job.height)


def test_schema_v1_data_dirs_are_migrated(tmp_path):
    from painterly.jobs.store import _MIGRATIONS

    data = tmp_path / "old"
    data.mkdir()
    conn = sqlite3.connect(data / "jobs.sqlite3")
    conn.executescript(_MIGRATIONS[1] + "; PRAGMA user_version = 1;")
    conn.close()
    store = JobStore(data)
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert conn.execute("SELECT COUNT(*) FROM workers").fetchone()[0] == 0
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    assert "precision" in columns  # v3
    conn.close()


def test_live_workers_are_listed_and_share_the_cores(store, submit):
    from painterly.jobs.worker import _fair_share

    assert store.workers() == []
    job_id = submit(cfg(steps=2000))
    worker = WorkerThread(store.data_dir)
    try:
        wait_for(lambda: store.get(job_id).step >= 2)
        (me,) = store.workers()
        assert me.pid == os.getpid()
        other = WorkerInfo.current()
        store.register(other)
        assert len(store.workers()) == 2 and _fair_share(store, me, cores=8) == 4
        store.register(other, gone=True)
        assert _fair_share(store, me, cores=8) == 8
        dead = WorkerInfo(f"{me.host}:999999:x", me.host, 999999)  # no such process here
        store.register(dead)
        assert [w.token for w in store.workers()] == [me.token]
    finally:
        store.cancel(job_id)
        worker.join()
    assert store.workers() == []  # it said goodbye


def test_cancel_while_waiting_to_resume_keeps_the_checkpoint(store, submit):
    job_id = submit(cfg(steps=2000))
    worker = WorkerThread(store.data_dir)
    wait_for(lambda: store.get(job_id).step >= 5)
    worker.stop.set()
    worker.join()
    store.cancel(job_id)  # it already ran: "stop and keep" applies, not "cancelled"
    paused = store.get(job_id)
    assert paused.status == "queued" and paused.cancel_requested and paused.checkpoint_step >= 5
    assert run_worker(store.data_dir, once=True) == 1
    job = store.get(job_id)
    assert job.status == "done" and job.stopped_early and job.step == paused.checkpoint_step
    with Image.open(store.result_path(job_id)) as result:
        assert result.size == (job.width, job.height)


def test_a_full_disk_pauses_the_job_and_the_worker_keeps_serving(store, submit, monkeypatch):
    """ENOSPC (simulated: a real full disk needs a small file system mounted) while the store
    is read, and again while a job writes its preview: the worker neither exits nor fails the
    job; when the disk has room again the job finishes."""
    import errno

    from painterly.jobs.worker import disk_fault, failure_reason

    job_id = submit(cfg(steps=4))
    full = {"claims": 2, "previews": 1}
    claim, save_preview = JobStore.claim, JobStore.save_preview

    def claim_on_a_full_disk(self, *args, **kwargs):
        if full["claims"]:
            full["claims"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return claim(self, *args, **kwargs)

    def preview_on_a_full_disk(self, *args, **kwargs):
        if full["previews"]:
            full["previews"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(self.data_dir / "x"))
        return save_preview(self, *args, **kwargs)

    monkeypatch.setattr(JobStore, "claim", claim_on_a_full_disk)
    monkeypatch.setattr(JobStore, "save_preview", preview_on_a_full_disk)
    stop = threading.Event()
    worker = threading.Thread(target=run_worker, args=(store.data_dir,), kwargs={"stop": stop, "poll": 0.05})
    worker.start()
    try:
        job = wait_for(lambda: (j := store.get(job_id)).status == "done" and j)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive() and full == {"claims": 0, "previews": 0}
    assert job.error == "" and job.step == 4
    log = store.log_path(job_id).read_text()
    assert "paused: the disk is full" in log and "done at step 4" in log
    # What a person would read if such an error did fail a job: no server path in it.
    e = OSError(errno.ENOSPC, "No space left on device", "/srv/secret/path")
    assert disk_fault(e) and "/srv" not in failure_reason(e, job)
    assert disk_fault(sqlite3.OperationalError("attempt to write a readonly database"))
    assert not disk_fault(OSError(errno.ENOENT, "No such file or directory"))
