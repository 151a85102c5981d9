"""The studio's launcher: ``launch()`` supervises the worker process(es) and the Streamlit server.

``launch`` starts the worker process(es) and the Streamlit server as children, all pointed
at one data directory (``PAINTERLY_HOME``), blocks, and stops them all on Ctrl-C or when
the server exits. A worker that exits is started again, forever: at once after a good run,
then after waits that double up to ``RESTART_DELAYS[1]`` while it keeps exiting (a full disk,
a folder gone read-only). The page never goes down because of the workers; it reads how they
fare from a small status file (``read_status``) and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .. import images

APP_SCRIPT = Path(__file__).with_name("main.py")
STOP_GRACE = 10.0  # seconds a child gets to stop cleanly before it is killed
RESTART_DELAYS = (1.0, 30.0)  # the first and the longest wait before starting a worker that keeps exiting
HEALTHY_AFTER = 30.0  # a worker that ran this long was well: the next one starts at once
FAILING_AFTER = 2  # exits in a row, each before HEALTHY_AFTER, that make the page say so
STATUS_ENV = "PAINTERLY_STUDIO_STATUS"  # the status file's path, for the server's pages
# How far below the web server the workers (and the calibration, which times steps as they run)
# are started: 0, level. At nice 10, in the 8-browser benchmark, pages were no quicker and the
# worker starved (0 of 8 pictures finished, against 7 of 8 level): the page waits on the
# browsers and Streamlit's one GIL more than on the worker (benchmarks/RESULTS.md, "Eight
# people at once"). `launch(worker_nice=...)` and `painterly worker --nice N` set it.
WORKER_NICE = 0


def streamlit_command(host: str, port: int) -> list[str]:
    """The command that serves the studio on host:port (headless, no telemetry, no outside
    requests (serve.py), uploads capped)."""
    return [
        sys.executable,
        "-m",
        "painterly.app.serve",
        "run",
        str(APP_SCRIPT),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.maxUploadSize",
        str(images.UPLOAD_MB),
        "--server.fileWatcherType",
        "none",  # a served app, not a dev session: no reload on edits
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
        "--client.showErrorDetails",
        "none",  # the backstop behind app/errors.py: a traceback never reaches the page
    ]


def worker_command(data_dir: Path, executor: str = "local", nice: int = WORKER_NICE) -> list[str]:
    """The command for one worker process on ``data_dir`` (``painterly worker``), ``nice``
    steps below the web server's priority."""
    cmd = [sys.executable, "-m", "painterly", "worker", "--data-dir", str(data_dir), "--executor", executor]
    return cmd + ["--nice", str(nice)] if nice else cmd


def launch(
    host: str = "127.0.0.1",
    port: int = 8501,
    workers: int = 1,
    data_dir: Optional[str] = None,
    executor: str = "local",
    restart_delays: tuple[float, float] = RESTART_DELAYS,
    worker_nice: int = WORKER_NICE,
) -> int:
    """Run the studio: ``workers`` worker processes and the Streamlit server; block until stopped.

    Args:
        host: address to listen on; localhost by default (the studio has no login).
        port: TCP port of the web page.
        workers: worker processes to start (0: only the web page; run ``painterly worker``
            elsewhere against the same data directory).
        data_dir: the job store's folder; None means ``$PAINTERLY_HOME`` or the user data dir.
        executor: where the workers run each job's optimisation: "local", or "ray" (a task on
            the Ray cluster at $RAY_ADDRESS; see ``painterly worker --executor``).
        restart_delays: the first and the longest wait before starting again a worker that
            keeps exiting (the waits double in between).
        worker_nice: how far below the web server the workers run (``WORKER_NICE``; 0: level).

    Returns:
        0 after Ctrl-C (or SIGTERM), else the server's exit status. Workers that keep exiting
        never end the studio: they are started again, and the page says so.

    Raises:
        OSError: host:port is taken (checked before anything starts).
        StoreError: the data folder cannot be used (read-only, not ours, not a folder).
    """
    from ..jobs import JobStore, StoreError, default_data_dir, health

    if workers < 0:
        raise ValueError("workers must be 0 or more")
    if not _port_free(host, port):
        raise OSError(f"{host}:{port} is in use (another studio?); choose another with --port")
    home = Path(data_dir).expanduser() if data_dir else default_data_dir()
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    if health.disk_problem(home) == health.READ_ONLY:
        raise StoreError(f"{home} is on a read-only file system; the studio writes its jobs there (use --data-dir)")
    JobStore(home).close()  # an unusable folder is refused here, in one line, before anything starts
    status_dir = Path(tempfile.mkdtemp(prefix="painterly-studio-", dir=_runtime_dir()))  # 0700
    status = status_dir / "status.json"
    env = {**os.environ, "PAINTERLY_HOME": str(home), STATUS_ENV: str(status)}

    children: list[subprocess.Popen] = []
    # Ctrl-C and SIGTERM both mean "stop everything cleanly"; installed explicitly because a
    # shell starts background jobs with SIGINT ignored.
    previous = (
        {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    )
    try:
        command = worker_command(home, executor, worker_nice)
        pool = [_Slot(_start(command, env, children)) for _ in range(workers)]
        write_status(status, pool, workers)
        server = _start(streamlit_command(host, port), env, children)
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        print(
            f"painterly studio: http://{shown}:{port}  ({workers} worker{'s' if workers != 1 else ''}, "
            f"jobs in {home}). Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        while True:
            rc = server.poll()
            if rc is not None:
                return rc
            for slot in pool:
                if slot.step(lambda: _start(command, env, children), restart_delays):
                    write_status(status, pool, workers)
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(status_dir, ignore_errors=True)


@dataclass
class _Slot:
    """One worker the studio keeps running: its process (None while waiting to restart it)."""

    proc: Optional[subprocess.Popen]
    started: float = 0.0
    quick_exits: int = 0  # exits in a row, each before HEALTHY_AFTER
    last_exit: Optional[int] = None
    restart_at: float = 0.0
    exits: int = 0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def step(self, start: Callable[[], subprocess.Popen], delays: tuple[float, float]) -> bool:
        """Look at the worker once: note an exit, start a new one when its wait is over.
        Returns whether anything changed."""
        now = time.monotonic()
        if self.proc is None:
            if now < self.restart_at:
                return False
            self.proc, self.started = start(), now
            return True
        rc = self.proc.poll()
        if rc is None:
            if self.quick_exits and now - self.started >= HEALTHY_AFTER:
                self.quick_exits = 0  # well again
                return True
            return False
        # A worker that dies mid-job leaves the job to be resumed; one that cannot use the data
        # folder exits at once, again and again: wait longer each time, never give up.
        self.exits, self.last_exit, self.proc = self.exits + 1, rc, None
        self.quick_exits = self.quick_exits + 1 if now - self.started < HEALTHY_AFTER else 0
        wait = 0.0 if not self.quick_exits else min(delays[1], delays[0] * 2 ** (self.quick_exits - 1))
        self.restart_at = now + wait
        print(
            f"painterly: worker exited with status {rc}; starting another in {wait:.0f} s", file=sys.stderr, flush=True
        )
        return True


def write_status(path: Path, pool: Sequence[_Slot], wanted: int) -> None:
    """How the workers fare, for the page (atomically; a write that fails is skipped: the file
    lives apart from the data folder, in memory where there is /dev/shm)."""
    now, clock = time.time(), time.monotonic()
    waits = [s.restart_at - clock for s in pool if s.proc is None]
    data = {
        "workers": wanted,
        "running": sum(1 for s in pool if s.proc is not None),
        "failing": any(s.quick_exits >= FAILING_AFTER for s in pool),
        "exits": sum(s.exits for s in pool),
        "last_exit": next((s.last_exit for s in pool if s.last_exit is not None), None),
        "retry_at": now + max(0.0, min(waits)) if waits else None,
        "updated": now,
    }
    tmp = path.with_suffix(".tmp")
    with contextlib.suppress(OSError):
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)


def read_status() -> Optional[dict[str, Any]]:
    """The launcher's latest word on its workers (``write_status``), or None outside ``launch``."""
    path = os.environ.get(STATUS_ENV)
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _runtime_dir() -> Optional[str]:
    """/dev/shm (memory: writable when the data disk is full), else the usual temporary folder."""
    shm = "/dev/shm"
    return shm if os.path.isdir(shm) and os.access(shm, os.W_OK | os.X_OK) else None


def _start(cmd: Sequence[str], env: dict[str, str], children: list[subprocess.Popen]) -> subprocess.Popen:
    proc = subprocess.Popen(list(cmd), env=env)
    children[:] = [p for p in children if p.poll() is None]  # workers restarted for days: keep the live ones
    children.append(proc)
    return proc


def _stop_all(children: list[subprocess.Popen]) -> None:
    """Ask every child still running to stop (SIGTERM: Streamlit shuts down, a worker puts its
    job back in the queue with a checkpoint), then kill stragglers."""
    live = [p for p in children if p.poll() is None]
    for p in live:
        try:
            p.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE
    for p in live:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()  # a worker killed mid-job is resumed from its checkpoint next time
            p.wait()


def _port_free(host: str, port: int) -> bool:
    """Whether the server could listen on host:port (checked before any child starts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
