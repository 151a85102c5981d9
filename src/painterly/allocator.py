"""The process's memory allocator: a run's big buffers go back to the system when they are freed.

glibc's malloc serves a request under its mmap threshold from its heap, and raises that threshold
(up to 32 MiB) each time a mapped buffer is freed. After the first few frees, a run's activations
of a few MiB up to 32 MiB (a block's deeper layers, their fp32 copies, a 2048 px image vector)
all come from the heap, and the holes they leave are kept resident: a complete 2048 px run in
blocks peaked at 4.6 GB with 1.1 GB of it free inside the heap, and a complete 4096 px run at
7.8 GB against a plan of 5.5 GB. With the threshold fixed at MMAP_THRESHOLD every buffer that
large is mapped on its own and unmapped when freed: the same 2048 px run peaked at 3.7 GB, in the
same time (benchmarks/RESULTS.md, "Prints"; ``python -m benchmarks.memtrace`` shows where).
"""

from __future__ import annotations

import ctypes
import functools

MMAP_THRESHOLD = 4 * 2**20  # 1 MiB saved another 0.16 GB at 2048 px, and was 6 % slower
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


@functools.cache
def release_big_buffers() -> bool:
    """Fix glibc's mmap threshold at MMAP_THRESHOLD, once per process (it also stops the heap's
    trim threshold from growing). False where the C library has no mallopt (not glibc): the run
    goes on, with the fragmentation that allocator has."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
