"""Running a planned batch: here in one or more processes, or as Ray tasks; outputs written once.

``run_batch(plan, ...)`` hands each picture to an executor as bytes (the photo's and the
paintings' files) and gets bytes back (the encoded picture), so the same task runs in a thread
here, in a local process or on a Ray node with no shared file system. Only this process writes
files: the picture, then its sidecar, each atomically, once per picture whatever the executor
retried. Progress is a ``BatchProgress`` value passed to ``on_progress``, which may raise
``Cancelled`` to stop: the pictures finished so far are kept, those in flight are dropped (a
rerun makes them).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import socket
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence, Union

from ..config import StyleConfig
from ..errors import one_line
from ..images import SAVE_FORMATS, encode_image, load_image, write_atomic
from ..progress import Cancelled
from .plan import BatchItem, BatchPlan, sidecar_record

# The default split of a machine's cores: threads per picture, and as many pictures at once as
# that leaves cores for. One thread per picture made 8 pictures at 256 px faster than two
# threads per picture on a 2-core Xeon (benchmarks/RESULTS.md, "Batches").
PICTURE_THREADS = 1
POST_EVERY = 0.5  # seconds between progress posts from a running picture (and the last step)


Tick = tuple[int, int, int, str]  # (item index, step, steps, "host:pid" running it): a running picture


@dataclass(frozen=True)
class Task:
    """One picture as plain data: what travels to a process or a Ray node."""

    index: int
    content: bytes
    styles: tuple[bytes, ...]
    config: dict[str, Any]  # StyleConfig.to_dict()
    fmt: str  # PNG, JPEG, WEBP


@dataclass(frozen=True)
class Rendered:
    """A task's answer: the encoded picture, or ``stopped`` (asked to stop before the end)."""

    index: int
    data: bytes
    steps: int
    seconds: float
    where: str  # "host:pid" that made it
    stopped: bool = False


@dataclass(frozen=True)
class Failed:
    """A task that ended with an error (after any retries): the one-line reason."""

    index: int
    error: str


Event = Union[Tick, Rendered, Failed]


@dataclass(frozen=True)
class Finished:
    """A picture that ended in this run: written (``ok``) or failed with ``error``."""

    item: BatchItem
    ok: bool
    seconds: float = 0.0
    error: str = ""
    where: str = ""


@dataclass(frozen=True)
class BatchProgress:
    """Where the batch stands; ``finished`` is the picture that just ended, if one did."""

    total: int  # pictures to make in this run (those already done are not counted)
    made: int
    failed: int
    fraction: float  # of the run's work (pixel-steps), 0..1
    elapsed: float
    finished: Optional[Finished] = None

    @property
    def eta(self) -> Optional[float]:
        """Seconds left, from the work done so far (None before any)."""
        if self.fraction <= 0:
            return None
        return self.elapsed * (1 - self.fraction) / self.fraction


@dataclass
class BatchResult:
    """What a run did."""

    plan: BatchPlan
    made: list[Finished] = field(default_factory=list)
    failed: list[Finished] = field(default_factory=list)
    stopped: bool = False
    seconds: float = 0.0
    executor: str = "local"


def render(
    task: Task, post: Optional[Callable[[Tick], None]] = None, stop: Optional[threading.Event] = None
) -> Rendered:
    """Make one picture from bytes; the one task body of every executor.

    ``post`` receives a Tick at most every POST_EVERY s and at the last step; ``stop`` set
    ends the run early (the result is then marked ``stopped``).
    """
    from ..stylize import stylize

    where = f"{socket.gethostname()}:{os.getpid()}"
    config = StyleConfig.from_dict(task.config)
    content = load_image(task.content, name="content image")
    styles = [load_image(s, name="style image") for s in task.styles]
    last_post, last_step = 0.0, 0

    def on_progress(p: Any) -> None:
        nonlocal last_post, last_step
        last_step = p.step
        now = time.monotonic()
        if post is not None and (now - last_post >= POST_EVERY or p.step == p.steps):
            last_post = now
            post((task.index, p.step, p.steps, where))
        if stop is not None and stop.is_set() and p.step < p.steps:
            raise Cancelled

    t0 = time.perf_counter()
    image = stylize(content, styles, config, on_progress=on_progress)
    stopped = last_step < config.steps
    data = b"" if stopped else encode_image(image, task.fmt)
    return Rendered(task.index, data, last_step, time.perf_counter() - t0, where, stopped)


def make_task(index: int, item: BatchItem) -> Task:
    """The picture's inputs read into a Task."""
    return Task(
        index,
        item.content.read_bytes(),
        tuple(s.read_bytes() for s in item.styles),
        item.config.to_dict(),
        SAVE_FORMATS[item.output.suffix.lower()],
    )


# --- executors: items in, events out --------------------------------------------------------

Executor = Callable[[Sequence[BatchItem], threading.Event], Iterator[Event]]


def cores() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def split_cores(workers: int = 0, threads: int = 0) -> tuple[int, int]:
    """(processes, threads per picture) for this machine; 0 = the default split (PICTURE_THREADS)."""
    n = cores()
    if threads <= 0:
        threads = max(1, n // workers) if workers > 0 else min(PICTURE_THREADS, n)
    if workers <= 0:
        workers = max(1, n // threads)
    return workers, threads


def local_executor(workers: int) -> Executor:
    """Pictures here: one at a time in a thread of this process (``workers`` 1), or in that many
    processes. Threads per picture are the items' ``config.threads``."""

    def run(items: Sequence[BatchItem], stop: threading.Event) -> Iterator[Event]:
        if workers <= 1:
            return _in_thread(items, stop)
        return _in_processes(items, stop, workers)

    return run


def _in_thread(items: Sequence[BatchItem], stop: threading.Event) -> Iterator[Event]:
    events: queue.Queue[Optional[Event]] = queue.Queue()

    def work() -> None:
        for i, item in enumerate(items):
            if stop.is_set():
                break
            try:
                events.put(render(make_task(i, item), events.put, stop))
            except Exception as e:  # noqa: BLE001 - a picture's failure is reported, the batch goes on
                events.put(Failed(i, one_line(e)))
        events.put(None)

    thread = threading.Thread(target=work, name="painterly-batch", daemon=True)
    thread.start()
    while (event := events.get()) is not None:
        yield event
    thread.join()


# The worker processes' channel to the parent and the parent's stop flag (set by _child_init).
_child: dict[str, Any] = {}


def _child_init(ticks: Any, stop: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it sets stop
    _child.update(ticks=ticks, stop=stop)


def _child_render(task: Task) -> Rendered:
    return render(task, _child["ticks"].put, _child["stop"])


def _in_processes(items: Sequence[BatchItem], stop: threading.Event, workers: int) -> Iterator[Event]:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # torch and fork do not mix
    ticks, child_stop = ctx.Queue(), ctx.Event()
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_child_init, initargs=(ticks, child_stop))
    running: dict[Future[Rendered], int] = {}
    waiting = list(enumerate(items))
    try:
        while waiting or running:
            if stop.is_set():
                child_stop.set()
                waiting = []
            while waiting and len(running) < 2 * workers:  # inputs read as they are needed
                i, item = waiting.pop(0)
                try:
                    running[pool.submit(_child_render, make_task(i, item))] = i
                except OSError as e:
                    yield Failed(i, one_line(e))
            finished, _ = wait(running, timeout=0.1, return_when=FIRST_COMPLETED)
            yield from _drain(ticks)
            for fut in finished:
                i = running.pop(fut)
                try:
                    yield fut.result()
                except Exception as e:  # noqa: BLE001 - reported as the picture's failure
                    yield Failed(i, one_line(e))
        yield from _drain(ticks)
    finally:
        child_stop.set()
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(ticks: Any) -> Iterator[Tick]:
    while True:
        try:
            yield ticks.get_nowait()
        except queue.Empty:
            return


# --- the run --------------------------------------------------------------------------------


def run_batch(
    plan: BatchPlan,
    *,
    executor: Optional[Executor] = None,
    threads: int = 0,
    on_progress: Optional[Callable[[BatchProgress], None]] = None,
    name: str = "local",
) -> BatchResult:
    """Make the plan's pictures; write each one and its sidecar as it arrives.

    Args:
        plan: from ``plan_batch``.
        executor: ``local_executor(n)`` (default: the machine's cores split as
            ``split_cores(threads=threads)`` says) or ``ray_executor(...)``.
        threads: torch threads per picture whose ``config.threads`` is 0 (0: the default
            split's; on Ray, give the CPUs each task asks for).
        on_progress: called with a BatchProgress on every progress post and every finished
            picture; may raise ``Cancelled`` to stop (finished pictures are kept).
        name: what the executor is called in the result.

    Returns:
        A BatchResult: the pictures made and failed, whether it was stopped, the seconds.
    """
    workers, threads = split_cores(threads=threads)
    if executor is None:
        executor = local_executor(workers)
    # Previews cost time and nobody looks at them here; threads and previews are runtime
    # options, outside the settings key, so this changes no picture's key.
    items = [
        dataclasses.replace(i, config=i.config.replace(preview_every=0, threads=i.config.threads or threads))
        for i in plan.todo
    ]
    result = BatchResult(plan, executor=name)
    stop = threading.Event()  # tells the executor to wind down
    cancelled = False
    share = [i.run.work_done(i.run.steps) for i in items]
    total_work = sum(share) or 1.0
    done_work = [0.0] * len(items)
    ended: set[int] = set()
    t0 = time.perf_counter()

    def tell(finished: Optional[Finished] = None) -> None:
        nonlocal cancelled
        if on_progress is None:
            return
        progress = BatchProgress(
            total=len(items),
            made=len(result.made),
            failed=len(result.failed),
            fraction=min(1.0, sum(done_work) / total_work),
            elapsed=time.perf_counter() - t0,
            finished=finished,
        )
        try:
            on_progress(progress)
        except Cancelled:
            cancelled = True
            stop.set()

    events = executor(items, stop)
    try:
        for event in events:
            if isinstance(event, tuple):
                i, step, _, _ = event
                if i not in ended:  # a retried picture starts again from step 0
                    done_work[i] = items[i].run.work_done(step)
                    tell()
                continue
            if event.index in ended:
                continue  # once per picture, whatever the executor retried
            item = items[event.index]
            if isinstance(event, Rendered) and event.stopped:
                continue  # stopped before the end: not written, a rerun makes it
            ended.add(event.index)
            done_work[event.index] = share[event.index]
            if isinstance(event, Rendered):
                finished = _write(item, event)
            else:
                finished = Finished(item, ok=False, error=event.error)
                write_atomic(item.sidecar(), json.dumps(sidecar_record(item, "failed", error=event.error)).encode())
            (result.made if finished.ok else result.failed).append(finished)
            tell(finished)
    finally:
        stop.set()  # whatever ends the loop (an error writing a file too) ends the executor's work
        close = getattr(events, "close", None)
        if close is not None:
            close()
    result.stopped = cancelled
    result.seconds = time.perf_counter() - t0
    return result


def _write(item: BatchItem, r: Rendered) -> Finished:
    """The picture, then its sidecar: a crash between the two leaves no sidecar, so it is redone."""
    write_atomic(item.output, r.data)
    record = sidecar_record(item, "done", r.data, seconds=round(r.seconds, 3), steps=r.steps, made_by=r.where)
    write_atomic(item.sidecar(), json.dumps(record, indent=1).encode())
    return Finished(item, ok=True, seconds=r.seconds, where=r.where)
