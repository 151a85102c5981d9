"""``BatchReporter``: one progress bar for the whole batch on stderr, and a line per picture.

A live bar on a terminal, a line every 10 % in a log (as ``ProgressReporter`` does for one run).
Torch-free: it only reads ``BatchProgress`` values.
"""

from __future__ import annotations

import math
import time
from typing import TextIO

from ..reporter import clock
from .run import BatchProgress


class BatchReporter:
    """The batch's progress on stderr; ``quiet`` prints nothing."""

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream, self.quiet = stream, quiet
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.last_draw = 0.0
        self.next_line = 0.1
        self.live = False

    @staticmethod
    def line(p: BatchProgress, *, bar: bool) -> str:
        head = f"{p.made + p.failed}/{p.total} pictures"
        if bar:
            filled = int(20 * p.fraction)
            head = f"[{'#' * filled}{'.' * (20 - filled)}] {100 * p.fraction:3.0f}%  " + head
        failed = f" ({p.failed} failed)" if p.failed else ""
        return f"{head}{failed}  {clock(p.elapsed)} elapsed  ETA {clock(p.eta)}"

    def update(self, p: BatchProgress) -> None:
        if self.quiet:
            return
        if p.finished is not None:
            f = p.finished
            n = f"[{p.made + p.failed}/{p.total}]"
            self.note(f"{n} {f.item.name} ({f.seconds:.1f} s)" if f.ok else f"{n} failed: {f.item.name}: {f.error}")
        if self.tty:
            now = time.monotonic()
            if p.finished is not None or now - self.last_draw >= 0.1:
                self.last_draw = now
                self.stream.write("\r" + self.line(p, bar=True) + "\033[K")
                self.stream.flush()
                self.live = True
        elif p.fraction >= self.next_line and p.finished is None:
            self.next_line = math.floor(p.fraction * 10 + 1) / 10
            self.note(self.line(p, bar=False))

    def note(self, text: str) -> None:
        """A line of its own (the live bar is cleared first and redrawn on the next update)."""
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\033[K")
            self.live = False
        self.stream.write(f"painterly: {text}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
            self.live = False
