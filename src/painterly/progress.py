"""What a run tells its caller after each step, and how the caller stops it.

Torch-free on purpose: a front end that only watches or stops runs (the batch parent, the
studio's page) imports this without loading the engine. ``stylize`` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional

from PIL import Image


class Cancelled(Exception):
    """Raise from an ``on_progress`` callback to stop a run: ``stylize`` then returns the best image
    so far, ``stylize_video`` the frames made, a batch the pictures finished."""


@dataclass(frozen=True)
class Progress:
    """One step of a run, as passed to ``on_progress``.

    ``image`` is set every ``config.preview_every`` steps, at the end of each scale and at
    the last step; otherwise None (making an image costs time).
    """

    step: int  # steps done so far, across all scales (1-based)
    steps: int  # total steps of the run
    scale: int  # current scale, 1-based (1 = coarsest)
    scales: int
    size: tuple[int, int]  # (width, height) being optimised now
    loss: float  # weighted total
    losses: Mapping[str, float]  # weighted terms: content, style, tv
    elapsed: float  # seconds since the run started
    image: Optional[Image.Image] = field(default=None, compare=False)
    precision: str = "fp32"  # what the convolutions run in (config.precision resolved)
    block: int = 0  # block size (px) of this scale's block mode; 0 = the whole image at once

    @property
    def fraction(self) -> float:
        return self.step / self.steps


ProgressCallback = Callable[[Progress], None]
