"""A batch on a Ray cluster: each picture a Ray task, its inputs and output passed through Ray.

Ray (https://docs.ray.io) schedules the tasks on the cluster's CPUs (or GPUs); nothing here is a
scheduler of our own. Each distinct input file is put in Ray's object store once and each task
returns its picture's bytes, so the nodes need painterly installed but no shared file system.
A task whose worker process or node dies is rerun by Ray up to ``retries`` times (Ray's
``max_retries``: system failures only); an error of the picture itself (a bad image) is not
retried. The files are written by the caller (``run_batch``), once per picture.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

from ..errors import one_line
from ..images import SAVE_FORMATS
from .plan import BatchError, BatchItem
from .run import Event, Executor, Failed, Rendered, Task, render

_POLL = 0.2  # seconds between looks at the tasks and the progress queue


def connect(address: Optional[str] = None, *, num_cpus: Optional[int] = None) -> bool:
    """Join the Ray cluster at ``address`` (or $RAY_ADDRESS), or start a local one if neither.

    Returns whether Ray was initialised here (then the caller shuts it down when done).

    Raises:
        BatchError: Ray is not installed, or the address does not answer: one line, before
            any work.
    """
    try:
        import ray
    except ImportError:
        raise BatchError("Ray is not installed here: pip install 'painterly[ray]'") from None
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address and address not in ("auto", "local"):
        check_reachable(address)
    where = address or "a new local cluster"
    no_token = getattr(ray.exceptions, "AuthenticationError", ())  # Ray 2.5x+: clusters ask for a token
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:  # a cluster of this machine for this run; its dashboard stays off
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False)
    except no_token:
        raise BatchError(
            f"cannot join the Ray cluster at {where}: it asks for a token and none was found here; give the "
            "cluster's token as $RAY_AUTH_TOKEN (or in ~/.ray/auth_token) and run again"
        ) from None
    except (ConnectionError, RuntimeError, ValueError) as e:
        # Ray 2.5x+ clusters require a token by default: the driver sends it only when told to.
        hint = "" if address is None or os.environ.get("RAY_AUTH_MODE") else " (token auth? set RAY_AUTH_MODE=token)"
        raise BatchError(f"cannot join the Ray cluster at {where}: {one_line(e)}{hint}") from None
    return True


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """A TCP connection to the address's host and port, so a wrong address fails in seconds
    with one line (Ray itself retries for a minute)."""
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise BatchError(f"Ray address {address!r}: use HOST:PORT (e.g. 127.0.0.1:6379), ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise BatchError(
            f"cannot reach the Ray cluster at {address} ({e.strerror or e}); start one with 'ray start --head' "
            "or check the address"
        ) from None


def _ray_render(index: int, content: bytes, config: dict, fmt: str, progress: Any, *styles: bytes) -> Rendered:
    """The Ray task: the same ``render`` as a local picture, progress posted to a Ray queue."""
    return render(Task(index, content, styles, config, fmt), progress.put)


def ray_executor(*, retries: int = 3, gpus: float = 0.0) -> Executor:
    """Pictures as Ray tasks on the cluster ``connect`` joined.

    Args:
        retries: how many times Ray reruns a picture whose worker process or node died.
        gpus: GPUs each task asks for (pictures with ``device`` auto then use the GPU).

    Each task asks for ``config.threads`` CPUs, and runs torch on that many threads.
    """

    def run(items: Sequence[BatchItem], stop: threading.Event) -> Iterator[Event]:
        import ray
        from ray.util.queue import Queue

        progress = Queue(actor_options={"num_cpus": 0})
        remote = ray.remote(_ray_render)
        refs: dict[Any, int] = {}
        uploaded: dict[Any, Any] = {}  # path -> ObjectRef: each file travels once

        def put(path: Any) -> Any:
            if path not in uploaded:
                uploaded[path] = ray.put(path.read_bytes())
            return uploaded[path]

        for i, item in enumerate(items):
            options = remote.options(
                num_cpus=max(1, item.config.threads), num_gpus=gpus, max_retries=retries, retry_exceptions=False
            )
            fmt = SAVE_FORMATS[item.output.suffix.lower()]
            refs[options.remote(i, put(item.content), item.config.to_dict(), fmt, progress, *map(put, item.styles))] = i
        try:
            pending = list(refs)
            while pending and not stop.is_set():
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL)
                yield from _ticks(progress)
                for ref in ready:
                    try:
                        yield ray.get(ref)
                    except Exception as e:  # noqa: BLE001 - the picture failed after Ray's retries
                        yield Failed(refs[ref], _reason(e))
            yield from _ticks(progress)
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)  # finished tasks ignore it
            progress.shutdown()

    return run


def _ticks(progress: Any) -> list[Any]:
    n = progress.qsize()
    return progress.get_nowait_batch(n) if n else []


def _reason(e: BaseException) -> str:
    """The picture's own error (a RayTaskError wraps it), or what Ray says happened."""
    cause = getattr(e, "cause", None)
    if isinstance(cause, BaseException):
        return one_line(cause)
    return one_line(e).split(" Traceback")[0]


@contextlib.contextmanager
def local_head(num_cpus: int = 2, *, env: Optional[dict[str, str]] = None, timeout: float = 120) -> Iterator[str]:
    """A throwaway Ray cluster of this machine: ``ray start --head --block`` on free ports, in a
    temporary folder, dashboard off; yields its address ("127.0.0.1:PORT").

    For tests and benchmarks. It is stopped by signalling its own process group: ``ray stop``
    would stop every Ray cluster on the machine. The cluster keeps Ray's token authentication,
    with a token of its own unless one is given: Ray 2.60's ``ray start`` makes none
    (it refuses to start without ``~/.ray/auth_token`` or $RAY_AUTH_TOKEN), and a token written
    into the home folder would outlive the cluster. While it runs, $RAY_AUTH_TOKEN holds it in
    this process's environment, so a driver started from here (``ray.init``, a ``painterly``
    subprocess) joins it; a driver also needs RAY_AUTH_MODE=token set before Ray is imported.

    Args:
        num_cpus: the CPUs the head offers.
        env: the head's (and its workers') environment; default: this process's, less RAY_ADDRESS.
    """
    env = dict(os.environ if env is None else env)
    env.pop("RAY_ADDRESS", None)
    env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    token = env.setdefault("RAY_AUTH_TOKEN", os.environ.get("RAY_AUTH_TOKEN") or secrets.token_hex(32))
    port = _free_port()
    ports = ["--port", str(port), "--ray-client-server-port", str(_free_port()), "--dashboard-port", str(_free_port())]
    for name in ("dashboard-agent-listen-port", "dashboard-agent-grpc-port", "metrics-export-port"):
        ports += [f"--{name}", str(_free_port())]
    ports += ["--runtime-env-agent-port", str(_free_port())]
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # Ray's socket paths must stay short
    ray_cli = Path(sys.executable).with_name("ray")
    with open(temp / "head.log", "w") as log:
        head = subprocess.Popen(
            [str(ray_cli), "start", "--head", "--block", "--num-cpus", str(num_cpus), "--temp-dir", str(temp)]
            + ["--include-dashboard", "false", "--disable-usage-stats", *ports],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    token_before = os.environ.get("RAY_AUTH_TOKEN")
    os.environ["RAY_AUTH_TOKEN"] = token
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if head.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Ray head did not start: {(temp / 'head.log').read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        time.sleep(2)  # the raylet registers after the GCS answers
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(5)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # Ray drains for 30 s after SIGTERM; nothing is left to drain
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
        if token_before is None:
            os.environ.pop("RAY_AUTH_TOKEN", None)
        else:
            os.environ["RAY_AUTH_TOKEN"] = token_before


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


__all__ = ["check_reachable", "connect", "local_head", "ray_executor"]
