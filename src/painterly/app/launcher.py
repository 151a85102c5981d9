"""The studio's launcher: ``launch()`` supervises the worker process(es) and the Streamlit server.

``launch`` starts the worker process(es) and the Streamlit server as children, all pointed
at one data directory (``PAINTERLY_HOME``), blocks, and stops them all on Ctrl-C or when
the server exits, restarting a worker that dies.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .. import images

APP_SCRIPT = Path(__file__).with_name("main.py")
STOP_GRACE = 10.0  # seconds a child gets to stop cleanly before it is killed
RESTART_LIMIT = 3  # workers that die within RESTART_WINDOW this many times in a row: give up
RESTART_WINDOW = 10.0


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
    ]


def worker_command(data_dir: Path, executor: str = "local") -> list[str]:
    """The command for one worker process on ``data_dir`` (``painterly worker``)."""
    return [sys.executable, "-m", "painterly", "worker", "--data-dir", str(data_dir), "--executor", executor]


def launch(
    host: str = "127.0.0.1",
    port: int = 8501,
    workers: int = 1,
    data_dir: Optional[str] = None,
    executor: str = "local",
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

    Returns:
        0 after Ctrl-C (or SIGTERM), else the server's exit status, or 1 if the workers
        keep dying at start.

    Raises:
        OSError: host:port is taken (checked before anything starts).
    """
    from ..jobs import default_data_dir

    if workers < 0:
        raise ValueError("workers must be 0 or more")
    if not _port_free(host, port):
        raise OSError(f"{host}:{port} is in use (another studio?); choose another with --port")
    home = Path(data_dir).expanduser() if data_dir else default_data_dir()
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PAINTERLY_HOME": str(home)}

    children: list[subprocess.Popen] = []
    # Ctrl-C and SIGTERM both mean "stop everything cleanly"; installed explicitly because a
    # shell starts background jobs with SIGINT ignored.
    previous = (
        {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)} if _main_thread() else {}
    )
    try:
        pool = [_start(worker_command(home, executor), env, children) for _ in range(workers)]
        server = _start(streamlit_command(host, port), env, children)
        shown = "localhost" if host in ("127.0.0.1", "::1") else host
        print(
            f"painterly studio: http://{shown}:{port}  ({workers} worker{'s' if workers != 1 else ''}, "
            f"jobs in {home}). Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        quick_deaths = 0
        started = [time.monotonic()] * len(pool)
        while True:
            rc = server.poll()
            if rc is not None:
                return rc
            for i, proc in enumerate(pool):
                if proc.poll() is None:
                    continue
                # A worker that dies mid-job leaves the job to be resumed; start another one.
                quick_deaths = quick_deaths + 1 if time.monotonic() - started[i] < RESTART_WINDOW else 1
                if quick_deaths >= RESTART_LIMIT:
                    print(f"painterly: the worker keeps exiting (status {proc.returncode}); stopping", file=sys.stderr)
                    return 1
                print(f"painterly: worker exited with status {proc.returncode}; starting another", file=sys.stderr)
                pool[i] = _start(worker_command(home, executor), env, children)
                started[i] = time.monotonic()
            time.sleep(0.5)
    except KeyboardInterrupt:
        return 0
    finally:
        _stop_all(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(cmd: Sequence[str], env: dict[str, str], children: list[subprocess.Popen]) -> subprocess.Popen:
    proc = subprocess.Popen(list(cmd), env=env)
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
