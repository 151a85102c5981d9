"""Run the optimisation on a Ray cluster, for when one machine is not enough.

Ray (https://docs.ray.io) is the distributed engine; nothing here is a cluster of our own.
``ray_engine()`` returns a function with ``stylize``'s signature that runs ``stylize`` as a
Ray task and relays every ``Progress`` back to the caller's ``on_progress``, so the worker's
``run_job`` is the same for both executors: it claims the job, writes progress, previews,
checkpoints and the result to the store on its own machine (SQLite must not be shared over
a network file system), and its stop/cancel logic applies unchanged:

- the callback raising ``Cancelled`` ("stop and keep", or the worker stopping) is passed to
  the task, whose ``stylize`` then returns its best image so far, as it would locally;
- any other error of the callback (e.g. the job was handed on) cancels the task.

Needs ``pip install 'painterly[ray]'``; the cluster's nodes need painterly installed too.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional, Sequence, Union

from PIL import Image

_POLL = 0.1  # seconds between looks at the task while no progress arrives
_CONTROL_EVERY = 0.25  # seconds between the task's looks for a stop request

Styles = Union[Image.Image, Sequence[Image.Image]]


def ray_engine(threads: int = 0, **ray_init: Any) -> Callable[..., Image.Image]:
    """A ``stylize``-compatible function that runs each call as a Ray task.

    Args:
        threads: CPUs the task asks Ray for, and torch threads it uses (0: 1 CPU, torch's
            default threads). Ray schedules tasks by these CPUs.
        ray_init: arguments for ``ray.init`` if Ray is not initialised yet (by default it
            joins $RAY_ADDRESS or starts a local cluster).
    """
    import ray

    if not ray.is_initialized():
        ray.init(**{"log_to_driver": False, **ray_init})
    remote = ray.remote(_run_remote).options(num_cpus=max(1, threads), max_retries=0)

    def engine(
        content: Image.Image,
        styles: Styles,
        config: Any,
        *,
        on_progress: Optional[Callable[[Any], None]] = None,
        init_image: Optional[Image.Image] = None,
        start_step: int = 0,
    ) -> Image.Image:
        from ray.util.queue import Empty, Queue

        from ..progress import Cancelled

        progress: Queue = Queue()  # task -> here: Progress values
        control: Queue = Queue()  # here -> task: "stop"
        ref = remote.remote(content, styles, config, init_image, start_step, threads, progress, control)
        settled = False
        try:
            while True:
                finished = bool(ray.wait([ref], timeout=0)[0])
                # The task's puts are synchronous, so once it has finished all its progress is queued.
                for p in _drain(progress, wait=not finished, empty=Empty):
                    try:
                        if on_progress is not None:
                            on_progress(p)
                    except Cancelled:
                        control.put("stop")  # the task's stylize returns its best image so far
                if finished and progress.empty():
                    settled = True
                    return ray.get(ref)  # the image, or the task's own error raised here
        finally:
            if not settled:
                ray.cancel(ref, force=True)
            for q in (progress, control):
                q.shutdown()

    return engine


def _run_remote(
    content: Image.Image,
    styles: Styles,
    config: Any,
    init_image: Optional[Image.Image],
    start_step: int,
    threads: int,
    progress: Any,
    control: Any,
) -> Image.Image:
    """The Ray task: stylize, sending each Progress back and obeying a stop request."""
    import torch

    from ..progress import Cancelled
    from ..stylize import stylize

    if threads:
        torch.set_num_threads(threads)
    last_look = time.monotonic()

    def on_progress(p: Any) -> None:
        nonlocal last_look
        progress.put(p)
        if time.monotonic() - last_look >= _CONTROL_EVERY:
            last_look = time.monotonic()
            if not control.empty():
                raise Cancelled

    return stylize(content, styles, config, on_progress=on_progress, init_image=init_image, start_step=start_step)


def _drain(q: Any, *, wait: bool, empty: type[Exception]) -> list[Any]:
    """Everything queued now; with ``wait``, first wait up to _POLL s for one item."""
    items = []
    if wait:
        try:
            items.append(q.get(timeout=_POLL))
        except empty:
            return []
    n = q.qsize()
    return items + (q.get_nowait_batch(n) if n else [])


__all__ = ["ray_engine"]
