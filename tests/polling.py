"""Polling for tests that watch real processes and threads (workers, the launcher, a full disk)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 90.0, every: float = 0.02):
    """Poll until predicate() is truthy; return its value (fail after timeout)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")
