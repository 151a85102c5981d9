"""The allocator setting: a run's big buffers are mapped on their own (and freeing them frees
memory) where the memory plan says so, and kept in the heap for the next step where it does not."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from painterly.config import preset
from painterly.plan import HEAP_HOLES, RunPlan

# In a fresh process: free a 16 MiB buffer (glibc then raises its mmap threshold to 16 MiB), and
# see whether an 8 MiB buffer is still mapped on its own (mallinfo2's hblkhd) or taken from the heap;
# then whether a freed 24 MiB buffer goes back to the system (the mapped total falls by it) or stays:
# glibc on its own maps it (over its 16 MiB threshold then), kept it stays in the heap.
CODE = """
import ctypes, sys, torch
from painterly.allocator import release_freed_buffers
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "a b c d hblkhd f g h i j".split()]
f = ctypes.CDLL("libc.so.6").mallinfo2
f.restype = M
for mode in sys.argv[1].split(","):  # several: one process going from run to run, the last one counts
    if mode != "default":
        assert release_freed_buffers(mode == "release")
big = torch.empty(4 * 2**20)  # 16 MiB, mapped
del big  # freed
before = f().hblkhd
t = torch.empty(2 * 2**20)  # 8 MiB
small_mapped = f().hblkhd - before >= 8 * 2**20
mid = torch.empty(6 * 2**20)  # 24 MiB
mapped = f().hblkhd
del mid
print(small_mapped, mapped - f().hblkhd >= 24 * 2**20)
"""


GLIBC = sys.platform.startswith("linux") and ctypes.util.find_library("c") == "libc.so.6"


@pytest.mark.skipif(not GLIBC, reason="mallopt and mallinfo2 are glibc's")
@pytest.mark.parametrize(
    "mode, mapped",
    [
        ("default", "False True"),
        ("release", "True True"),
        ("keep", "False False"),
        ("release,keep", "False False"),
        ("keep,release", "True True"),
    ],
)
def test_big_buffers_are_mapped_on_their_own_only_when_released(mode, mapped):
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True).stdout
    assert out.strip() == mapped


# Kept buffers leave holes in the heap between live ones; switching to "release" (a print after
# small runs in the same worker process) must hand them back, or the print's peak starts above its plan.
HOLES = """
import sys, torch
from painterly.allocator import release_freed_buffers
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
release_freed_buffers(False)
big, live = [], []
for _ in range(8):
    big.append(torch.ones(6 * 2**20))  # 24 MiB, from the heap when kept
    live.append(torch.ones(2**18))  # 1 MiB between them, still in use
held = rss()
del big
kept = rss()
release_freed_buffers(True)
print(held - kept < 64 * 2**20, kept - rss() >= 150 * 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or not GLIBC, reason="glibc and /proc")
def test_switching_to_release_hands_back_what_kept_runs_left_in_the_heap():
    out = subprocess.run([sys.executable, "-c", HOLES], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True True"  # kept: freeing left them resident; released: they left


def _memory(size: int, **kw):
    cfg = preset("default", size=size, **kw)
    return RunPlan.build(cfg, 451, 300).memory(cfg)


def test_the_memory_plan_keeps_freed_buffers_only_for_runs_in_one_piece_far_under_their_budget():
    small = _memory(512, max_memory="16GB")
    assert not small.release_freed and small.kept_peak == int(small.peak * (1 + HEAP_HOLES))  # the default: fast
    assert "with freed buffers kept" in small.lines()[0]
    assert _memory(4096, max_memory="6GB").release_freed  # a print in blocks: its peak must hold
    assert "with freed buffers kept" not in _memory(4096, max_memory="6GB").lines()[0]
    # the same 512 px run with a budget its peak and the heap's holes would not fit
    tight = _memory(512, max_memory=f"{int(small.peak * (1 + HEAP_HOLES / 2))}B")
    assert tight.peak == small.peak and tight.release_freed
    assert _memory(512, max_memory="16GB", block_size=256).release_freed  # blocks: always


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_pictures_in_one_piece_keep_freed_buffers_where_their_holes_fit_the_budget(precision):
    # a square photo has the most pixels at a given size; fp32 (every CPU without bf16 units) the largest peak
    for size, shapes in [(512, [(512, 512), (512, 341), (341, 512), (512, 128)]), (1024, [(1024, 1024), (1024, 683)])]:
        for w, h in shapes:
            cfg = preset("default", size=size, precision=precision, max_memory="16GB")
            assert not RunPlan.build(cfg, w, h).memory(cfg).release_freed, (w, h)
    # 2048 px in one piece: kept where half again its peak fits 16 GB (bf16, 7.0 GB), not where it
    # does not (fp32, 12.2 GB: it still runs whole, returning its buffers)
    cfg = preset("default", size=2048, precision=precision, max_memory="16GB")
    plan = RunPlan.build(cfg, 2048, 1365).memory(cfg)
    assert not any(s.block for s in plan.scales)
    assert plan.release_freed == (precision == "fp32")


# Kept, nothing is mapped on its own, however large (a 1024 px run's first activations are
# 89-179 MiB, over glibc's 32 MiB ceiling); released, large buffers are mapped again. A thread's
# own arena cannot grow past 64 MiB, and a buffer larger than that from another thread must still
# be served (glibc maps it then, whatever M_MMAP_MAX says).
BIG = """
import ctypes, sys, threading, torch
from painterly.allocator import release_freed_buffers
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "a b c d hblkhd f g h i j".split()]
f = ctypes.CDLL("libc.so.6").mallinfo2
f.restype = M
out = []
for mode in ("keep", "release", "keep"):
    release_freed_buffers(mode == "release")
    before = f().hblkhd
    t = torch.ones(25 * 2**20)  # 100 MiB
    out.append(f().hblkhd - before >= 100 * 2**20)
    del t
got = []
th = threading.Thread(target=lambda: got.append(float(torch.ones(50 * 2**20).sum())))
th.start(); th.join()
print(*out, got == [50.0 * 2**20])
"""


@pytest.mark.skipif(not GLIBC, reason="mallopt and mallinfo2 are glibc's")
def test_kept_buffers_are_never_mapped_and_other_threads_still_get_large_ones():
    out = subprocess.run([sys.executable, "-c", BIG], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False True False True"
