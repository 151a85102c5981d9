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
(``plan.MemoryPlan.release_freed``): a run in one piece whose peak and the heap's holes fit its
budget keeps freed buffers in the heap; a run in blocks, whose peak must stay within the plan,
returns them.

Kept means kept whatever their size: nothing is mapped on its own (``M_MMAP_MAX`` 0) and the heap
is not trimmed during the run. glibc's threshold stops at 32 MiB, and at 1024 px VGG's first
activations (89 MiB in bf16, 179 MiB in fp32) were mapped and faulted in anew at every step even
with it there: two threads faulting pages side by side took half of each 1024 px bf16 step's wall
time (2.1 s a step against 1.1 s with nothing mapped; benchmarks/RESULTS.md, "The allocator").
A process that goes idle after kept runs (a studio worker between jobs) hands the heap back with
``hand_back``.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Optional

MMAP_THRESHOLD = 4 * 2**20  # 1 MiB saved another 0.16 GB at 2048 px, and was 6 % slower
TRIM_THRESHOLD = 128 * 2**10  # glibc's default: released, free memory at the heap's top leaves too
MMAP_MAX = 65536  # glibc's default number of mapped buffers: released, large ones are mapped
# Kept: no buffer is mapped on its own, whatever its size, and the heap's top is never trimmed
# during a run (mallopt's largest value), so what one step frees the next one finds. The threshold
# is set too (at glibc's own ceiling, DEFAULT_MMAP_THRESHOLD_MAX on 64-bit) so that glibc stops
# moving it and a process can go back and forth between runs.
KEEP_MMAP_MAX = 0
KEEP_TRIM_THRESHOLD = 2**31 - 1
KEEP_MMAP_THRESHOLD = 32 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt's parameter numbers (malloc.h)


def _settings(release: bool) -> tuple[tuple[int, int], ...]:
    """(mallopt parameter, value) for each setting; read when called, so a test or benchmark can
    patch a value."""
    if release:
        return (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_MMAP_MAX, MMAP_MAX), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return (
        (_M_MMAP_THRESHOLD, KEEP_MMAP_THRESHOLD),
        (_M_MMAP_MAX, KEEP_MMAP_MAX),
        (_M_TRIM_THRESHOLD, KEEP_TRIM_THRESHOLD),
    )


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
    """Set glibc's malloc for the next run: ``release``, freed buffers of MMAP_THRESHOLD (4 MiB)
    or more leave the process, and what earlier runs kept leaves now; kept, freed buffers of any
    size stay in the heap for the next step. Setting the threshold also stops glibc from moving
    it. False where the C library has no mallopt (not glibc): the run goes on with that
    allocator's own behaviour."""
    libc = _libc()
    if libc is None:
        return False
    ok = all([libc.mallopt(k, v) for k, v in _settings(release)])  # every one set, even after a refusal
    if release:
        # What earlier runs of this process kept (a studio worker's small jobs before a print)
        # leaves now, holes in the middle of the heap included, so the plan's peak holds.
        hand_back()
    return ok


def hand_back() -> None:
    """Return the heap's free memory to the system (``malloc_trim``), holes between live buffers
    included: for a process going idle after kept runs, which would otherwise hold their peak."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
