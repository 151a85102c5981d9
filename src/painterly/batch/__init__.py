"""Batches: many photos in many styles, here or on a Ray cluster, resumable.

    >>> from painterly.batch import plan_batch, run_batch
    >>> plan = plan_batch("out", preset("default", size=256), contents=["photos/"], styles=["paintings/*.jpg"])
    >>> result = run_batch(plan)                       # this machine's cores, split as measured
    >>> connect("127.0.0.1:6379"); run_batch(plan, executor=ray_executor())   # a Ray cluster

``plan`` (what to make; torch-free), ``run`` (making it, writing each picture once) and
``on_ray`` (Ray as the executor; Ray is imported only there). Importing this package does not
import torch or Ray.
"""

from __future__ import annotations

from .on_ray import check_reachable, connect, local_head, ray_executor
from .plan import DEFAULT_TEMPLATE, BatchError, BatchItem, BatchPlan, Skipped, is_done, plan_batch
from .run import (
    PICTURE_THREADS,
    BatchProgress,
    BatchResult,
    Cancelled,
    Finished,
    local_executor,
    run_batch,
    split_cores,
)

__all__ = [
    "DEFAULT_TEMPLATE",
    "PICTURE_THREADS",
    "BatchError",
    "BatchItem",
    "BatchPlan",
    "BatchProgress",
    "BatchResult",
    "Cancelled",
    "Finished",
    "Skipped",
    "check_reachable",
    "connect",
    "is_done",
    "local_head",
    "local_executor",
    "plan_batch",
    "ray_executor",
    "run_batch",
    "split_cores",
]
