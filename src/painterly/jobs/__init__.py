"""The durable job queue under the studio: a SQLite row plus a folder per job, and workers.

    >>> from painterly.jobs import JobStore, run_worker
    >>> store = JobStore("/tmp/painterly-data")
    >>> job_id = store.submit(open("photo.jpg", "rb").read(), [open("painting.jpg", "rb").read()], config)
    >>> run_worker("/tmp/painterly-data", once=True)   # or `painterly worker --once`
    >>> store.get(job_id).status, store.result_path(job_id)

Importing this package does not import torch (the studio imports it on every page); the
worker imports it when it runs a job.
"""

from __future__ import annotations

from .store import ACTIVE, STATUSES, Job, JobStore, LeaseLost, StoreError, WorkerInfo, default_data_dir
from .worker import run_job, run_worker

__all__ = [
    "ACTIVE",
    "STATUSES",
    "Job",
    "JobStore",
    "LeaseLost",
    "StoreError",
    "WorkerInfo",
    "default_data_dir",
    "run_job",
    "run_worker",
]
