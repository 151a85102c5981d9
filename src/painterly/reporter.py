"""``ProgressReporter``: a run's progress on stderr, a live bar on a terminal, lines in a log.

The ETA is the run plan's one time-left figure (``RunPlan.remaining``: the step cost model for
how the steps left compare with those done, the run's own pace for how fast this machine goes).
Torch-free: it only reads ``Progress`` values.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Optional, TextIO

from .plan import DEFAULT_STEP_COST, RunPlan, StepCost

if TYPE_CHECKING:
    from .config import StyleConfig
    from .progress import Progress
    from .video import VideoProgress


def clock(seconds: Optional[float]) -> str:
    """'1:05', '1:02:07'; '--:--' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class LiveLine:
    """A stream with one live line on a terminal (redrawn in place) and lines of their own.

    The base of the run's and the batch's reporters: ``draw`` the live line (at most 10 times a
    second unless ``force``), ``note`` a line of its own, ``close`` at the end.
    """

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        self.stream, self.quiet = stream, quiet
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.last_draw = 0.0
        self.next_line = 0.1  # off a terminal: the next fraction (of 1) that gets a line
        self.live = False  # a live line is on screen and needs clearing before other output

    def draw(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.last_draw >= 0.1:
            self.last_draw = now
            self.stream.write("\r" + text + "\033[K")
            self.stream.flush()
            self.live = True

    def due(self, fraction: float) -> bool:
        """Off a terminal: whether ``fraction`` of the work has passed the next 10 % mark."""
        if fraction < self.next_line:
            return False
        self.next_line = math.floor(fraction * 10 + 1) / 10
        return True

    def note(self, text: str) -> None:
        """A line of its own (the live line is cleared first and redrawn on the next update)."""
        if self.quiet:
            return
        if self.live:
            self.stream.write("\r\033[K")
            self.live = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()
            self.live = False


class ProgressReporter(LiveLine):
    """Progress of a run on stderr.

    On a terminal: one live line (redrawn at most 10 times a second). Elsewhere (a log, a
    pipe, CI): a compact line every 10 % of the steps. Both show step/steps, scale, loss,
    elapsed time and the ETA.
    """

    def __init__(
        self, stream: TextIO, plan: RunPlan, config: StyleConfig, cost: StepCost = DEFAULT_STEP_COST, *,
        quiet: bool = False
    ) -> None:  # fmt: skip
        super().__init__(stream, quiet=quiet)
        self.plan, self.config, self.cost = plan, config, cost

    def eta(self, p: Progress) -> Optional[float]:
        if p.step <= 0:
            return None
        return self.plan.remaining(self.config, self.cost, p.step, p.elapsed)

    def line(self, p: Progress, *, bar: bool) -> str:
        width = len(str(p.steps))
        head = f"step {p.step:>{width}}/{p.steps}"
        if bar:
            filled = int(20 * p.step / p.steps)
            head += f" [{'#' * filled}{'.' * (20 - filled)}] {100 * p.step / p.steps:3.0f}%"
        w, h = p.size
        return (
            f"{head}  scale {p.scale}/{p.scales} {w}x{h} {p.precision}  loss {p.loss:.4g}  "
            f"{clock(p.elapsed)} elapsed  ETA {clock(self.eta(p))}"
        )

    def update(self, p: Progress, note: str = "") -> None:
        """Show step p; ``note`` (a snapshot's loss line) is printed on a line of its own."""
        if self.quiet:
            return
        last = p.step >= p.steps
        if note:
            self.note(note)
        if self.tty:
            self.draw(self.line(p, bar=True), force=last or bool(note))
        elif (self.due(p.step / p.steps) or last) and not note:  # the note already said where we are
            self.note(self.line(p, bar=False))


class VideoReporter(LiveLine):
    """Progress of a video run on stderr: frames done / total, the current frame's step, time
    per frame, ETA and where the latest frame is (open it to watch the run). A live line on a
    terminal; elsewhere a line per finished frame."""

    def __init__(self, stream: TextIO, *, quiet: bool = False) -> None:
        super().__init__(stream, quiet=quiet)
        self.latest = ""

    def line(self, p: VideoProgress) -> str:
        width = len(str(p.frames))
        step = f"  step {p.step.step}/{p.step.steps}" if p.step is not None else ""
        shot = "  new shot" if p.new_shot and p.step is not None else ""
        per = f"{p.frame_seconds:.1f} s/frame" if p.frame_seconds is not None else "-- s/frame"
        latest = f"  latest {self.latest}" if self.latest else ""
        return (
            f"frame {p.done:>{width}}/{p.frames} done{step}{shot}  {per}  "
            f"{clock(p.elapsed)} elapsed  ETA {clock(p.eta)}{latest}"
        )

    def update(self, p: VideoProgress, latest: str = "") -> None:
        """Show p; ``latest`` names the file of the frame just finished."""
        if self.quiet:
            return
        if latest:
            self.latest = latest
        finished = p.step is None
        if self.tty:
            self.draw(self.line(p), force=finished)
        elif finished:
            self.note(self.line(p))
