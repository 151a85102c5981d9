"""Whether the data folder's disk can take more work: full, read-only, or fine.

A full disk or a read-only folder is a state of the machine, not a fault of a job or of a
worker: the store refuses new pictures while it lasts, the worker pauses its job and waits,
and the studio says so in a banner. This module only looks (``os.statvfs``, no writes), so it
answers even when nothing can be written; it imports nothing of ours.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Optional, Union

# New pictures are refused below this much free space: room for one more upload's pictures
# (50 MB each at most) and the running jobs' previews, checkpoints and results.
MIN_FREE = 100 * 2**20

FULL = "full"
READ_ONLY = "read-only"

# What a person reads about each state (no paths: the page shows these).
WORDS = {
    FULL: "the disk is full",
    READ_ONLY: "the data folder is read-only",
}


def disk_problem(data_dir: Union[Path, str], min_free: Optional[int] = None) -> Optional[str]:
    """``FULL``, ``READ_ONLY`` or None (fine, or it cannot be told: a missing folder is not a
    disk state, and the store says what is wrong with it)."""
    try:
        st = os.statvfs(data_dir)
    except OSError:
        return None
    if st.f_flag & os.ST_RDONLY:
        return READ_ONLY
    if st.f_bavail * st.f_frsize < (MIN_FREE if min_free is None else min_free):
        return FULL
    return None


def disk_fault(e: BaseException) -> bool:
    """A full disk or a read-only folder, in the file system's or SQLite's words."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    text = str(e).lower()
    return isinstance(e, sqlite3.OperationalError) and ("disk is full" in text or "readonly" in text)


def as_os_error(e: sqlite3.Error) -> OSError:
    """SQLite's "database or disk is full" / "readonly database" as the OSError the file
    system would have raised, so callers handle one kind of disk fault."""
    if "readonly" in str(e).lower():
        return OSError(errno.EROFS, WORDS[READ_ONLY])
    return OSError(errno.ENOSPC, WORDS[FULL])
