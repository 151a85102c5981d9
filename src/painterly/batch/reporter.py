"""``BatchReporter``: one progress bar for the whole batch on stderr, and a line per picture.

A live bar on a terminal, a line every 10 % in a log (as ``ProgressReporter`` does for one run).
Torch-free: it only reads ``BatchProgress`` values.
"""

from __future__ import annotations

from ..reporter import LiveLine, clock
from .run import BatchProgress


class BatchReporter(LiveLine):
    """The batch's progress on stderr; ``quiet`` prints nothing."""

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
        f = p.finished
        if f is not None:
            n = f"[{p.made + p.failed}/{p.total}]"
            self.note(f"{n} {f.item.name} ({f.seconds:.1f} s)" if f.ok else f"{n} failed: {f.item.name}: {f.error}")
        if self.tty:
            self.draw(self.line(p, bar=True), force=f is not None)
        elif f is None and self.due(p.fraction):
            self.note(self.line(p, bar=False))

    def note(self, text: str) -> None:
        """A line of its own, as the command's other messages: ``painterly: ...``."""
        super().note(f"painterly: {text}")
