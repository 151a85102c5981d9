"""Tiny video clips made with PyAV for the tests (so no test needs the shared clip)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(
    path: Path,
    n: int = 5,
    *,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    audio: bool = False,
    times_ms: list[int] | None = None,
) -> Path:
    """A small clip of moving stripes; with a 440 Hz tone when ``audio``; irregular frame times
    (milliseconds) with ``times_ms``."""
    w, h = size
    with av.open(str(path), "w") as c:
        vs = c.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
        if times_ms is not None:
            vs.codec_context.time_base = Fraction(1, 1000)
        a_s = c.add_stream("aac", rate=48000) if audio else None
        if a_s is not None:
            a_s.layout = "mono"
            t = np.arange(int(48000 * (n + 2) / 25)) / 48000
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            for k in range(0, tone.shape[1], 1024):
                chunk = np.ascontiguousarray(tone[:, k : k + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate, frame.pts = 48000, k
                c.mux(a_s.encode(frame))
            c.mux(a_s.encode(None))
        for i in range(n):
            xx = np.arange(w)[None, :, None]
            a = np.broadcast_to(((xx + 3 * i) // 4 % 2) * 200 + 20, (h, w, 3)).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            else:
                frame.pts = i
            c.mux(vs.encode(frame))
        c.mux(vs.encode(None))
    return path
