"""The allocator setting: a run's big buffers are mapped on their own, so freeing them frees memory."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

# In a fresh process: free a 16 MiB buffer (glibc then raises its mmap threshold to 16 MiB), and
# see whether an 8 MiB buffer is still mapped on its own (mallinfo2's hblkhd) or taken from the heap.
CODE = """
import ctypes, sys, torch
from painterly.allocator import release_big_buffers
class M(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in "a b c d hblkhd f g h i j".split()]
f = ctypes.CDLL("libc.so.6").mallinfo2
f.restype = M
if sys.argv[1] == "fixed":
    assert release_big_buffers() and release_big_buffers()
big = torch.empty(4 * 2**20)  # 16 MiB, mapped
del big  # freed
before = f().hblkhd
t = torch.empty(2 * 2**20)  # 8 MiB
print(f().hblkhd - before >= 8 * 2**20)
"""


GLIBC = sys.platform.startswith("linux") and ctypes.util.find_library("c") == "libc.so.6"


@pytest.mark.skipif(not GLIBC, reason="mallopt and mallinfo2 are glibc's")
@pytest.mark.parametrize("mode, mapped", [("default", "False"), ("fixed", "True")])
def test_big_buffers_are_mapped_on_their_own_after_release_big_buffers(mode, mapped):
    out = subprocess.run([sys.executable, "-c", CODE, mode], capture_output=True, text=True, check=True).stdout
    assert out.strip() == mapped
