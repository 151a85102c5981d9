"""The process's memory allocator: whether a run's freed buffers go back to the system.

glibc's malloc serves a request under its mmap threshold from its heap, and raises that threshold
(up to 32 MiB) each time a mapped buffer is freed. After the first few frees, a run's activations
of a few MiB up to 32 MiB (a block's deeper layers, their fp32 copies, a 2048 px image vector)
all come from the heap, and the holes they leave are kept resident: a complete 2048 px run in
blocks peaked at 4.6 GB with 1.1 GB of it free inside the heap, and a complete 4096 px run at
7.8 GB against a plan of 5.5 GB. With the threshold fixed at MMAP_THRESHOLD every buffer that
large is mapped on its own and unmapped when freed: the same 2048 px run peaked at 3.7 GB, in the
same time (benchmarks/RESULTS.md, "Prints"; ``python -m benchmarks.memtrace`` shows where).

That costs time where the buffers are small: a mapped buffer is faulted in, page by page, every
time it is allocated again. At 512 px VGG's blocks 2-4 make activations of 5-22 MiB, each mapped
and zeroed anew at every step; there the released setting took a fifth longer per step, most of
it in the kernel (benchmarks/RESULTS.md, "The allocator"). So the memory plan decides per run
(``plan.MemoryPlan.release_freed``): small runs keep freed buffers in the heap, as glibc would
after a few steps; large ones, whose peak must stay within the plan, return them.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Optional

MMAP_THRESHOLD = 4 * 2**20  # 1 MiB saved another 0.16 GB at 2048 px, and was 6 % slower
# Kept: glibc's own ceiling for the threshold it raises (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit),
# with the trim threshold it sets beside it (twice the mmap threshold): the heap as glibc leaves it
# after a run's first frees, set explicitly so that a process can go back and forth between runs.
KEEP_MMAP_THRESHOLD = 32 * 2**20
TRIM_THRESHOLD = 128 * 2**10  # glibc's default: released, free memory at the heap's top leaves too
KEEP_TRIM_THRESHOLD = 2 * KEEP_MMAP_THRESHOLD
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)


@functools.cache
def _libc() -> Optional[ctypes.CDLL]:
    """glibc with mallopt and malloc_trim typed, or None where the C library is another."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def release_freed_buffers(release: bool) -> bool:
    """Fix glibc's mmap threshold for the next run: at MMAP_THRESHOLD (``release``: freed buffers
    of 4 MiB or more leave the process), or at KEEP_MMAP_THRESHOLD (freed buffers up to 32 MiB stay
    in the heap for the next step). Setting it also stops glibc from moving it. False where the C
    library has no mallopt (not glibc): the run goes on with that allocator's own behaviour."""
    libc = _libc()
    if libc is None:
        return False
    if release:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
        # What earlier runs of this process kept (a studio worker's small jobs before a print)
        # leaves now, holes in the middle of the heap included, so the plan's peak holds.
        libc.malloc_trim(0)
        return bool(ok)
    return bool(
        libc.mallopt(_M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD)
    )
