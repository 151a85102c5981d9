"""The run plan: what a run will do, decided once and asked by every front end.

``RunPlan.build(config, width, height, n_styles)`` checks that the options, the photo and the
number of paintings fit together, then answers the coarse-to-fine scales (size and steps of
each), the final size, the steps, and the work done or left at any step. ``stylize`` runs it;
the CLI's progress line, the store's ``submit``, the worker's ETA and the studio's time
estimate read it, so none of them works it out again. Torch-free, like ``config``.

A later home for the run's memory plan (peak bytes per scale, for large prints): it is a
function of the same scales, so it belongs beside ``work_left`` here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from .config import MIN_AUTO_SCALE, MIN_SIZE, ConfigError, StyleConfig
from .images import ImageError, fit_size

Scale = tuple[tuple[int, int], int]  # ((width, height), steps) of one scale


def scale_plan(config: StyleConfig, width: int, height: int) -> list[Scale]:
    """[(size (w, h), steps)] per scale, coarsest first.

    With config.scales = n, scale i of n optimises at size/2^(n-1-i). With 0 (auto), the
    scales run from MIN_AUTO_SCALE px up to the size in steps of about 2x (one scale up to
    1.4x MIN_AUTO_SCALE), so every output size starts from the same picture. Steps are
    shared in proportion 2^(n-1-i): a step at half the size costs a quarter, so most of the
    work happens where it is cheap and the full-size scales only refine.
    """
    if config.scales:
        n = config.scales
        sides = [config.size / 2 ** (n - 1 - i) for i in range(n)]
    else:
        # Auto: from MIN_AUTO_SCALE up to the size in about-doubling steps (geometric), so the
        # coarsest scale is the same picture whatever the output size (config.MIN_AUTO_SCALE).
        n = 1 + max(0, round(math.log2(config.size / MIN_AUTO_SCALE)))
        sides = (
            [MIN_AUTO_SCALE * (config.size / MIN_AUTO_SCALE) ** (i / (n - 1)) for i in range(n)]
            if n > 1
            else [config.size]
        )
    shares = [2.0 ** (n - 1 - i) for i in range(n)]
    total = sum(shares)
    steps = [max(1, math.floor(config.steps * s / total)) for s in shares]
    steps[-1] = max(1, config.steps - sum(steps[:-1]))
    plan = []
    for i in range(n):
        long_side = max(MIN_SIZE, round(sides[i]))
        plan.append((fit_size(width, height, long_side), steps[i]))
    # Very small step budgets can exceed config.steps by the max(1, ...) floors; trim from the coarse end.
    while sum(s for _, s in plan) > config.steps and len(plan) > 1:
        plan.pop(0)
    return plan


def style_long_side(config: StyleConfig, size: tuple[int, int]) -> int:
    """The long side the paintings are read at for a scale of ``size`` (w, h): ``style_scale``
    times the scale's, so the strokes keep their size relative to the picture."""
    return max(MIN_SIZE, round(max(size) * config.style_scale))


def check_shape(width: int, height: int, long_side: int, name: str) -> None:
    """Refuse a picture too thin for the network at ``long_side`` px (before it loads).

    VGG19 halves the picture four times on the way to conv5: a short side under MIN_SIZE px
    leaves nothing to read there (torch's "Output size is too small").
    """
    short = min(fit_size(width, height, long_side))
    if short < MIN_SIZE:
        ratio = max(1, long_side // MIN_SIZE)
        raise ImageError(
            f"{name} is {width} × {height} px, too long and thin to paint at this size: its short side "
            f"would be {short} px and needs at least {MIN_SIZE}; crop it to at most {ratio}:1, or choose a larger size"
        )


def check_styles(style_blend: Sequence[float], n_styles: int) -> None:
    """At least one painting, and one blend weight per painting when weights are given.

    The one check of the number of style images, whichever front end meets it.
    """
    if n_styles < 1:
        raise ImageError("at least one style image is needed; add at least one painting")
    if style_blend and len(style_blend) != n_styles:
        plural = "s" if n_styles != 1 else ""
        raise ConfigError(f"style_blend has {len(style_blend)} weights for {n_styles} style image{plural}")


@dataclass(frozen=True)
class RunPlan:
    """The scales of one run, and what follows from them.

    Steps are 1-based and counted across scales, as in ``Progress.step``. Work is counted in
    pixel-steps: a VGG pass costs about in proportion to the pixels it sees, so a step at a
    later, larger scale weighs more, and an ETA is not fooled by the cheap coarse scales.
    """

    scales: tuple[Scale, ...]

    @classmethod
    def build(cls, config: StyleConfig, width: int, height: int, n_styles: Optional[int] = None) -> RunPlan:
        """The plan of ``config`` on a ``width`` x ``height`` photo with ``n_styles`` paintings
        (None: not known yet, as for the studio's estimate before the paintings are chosen).

        Raises:
            ImageError: no painting, or a photo too thin for the network (``check_shape``).
            ConfigError: ``config.style_blend`` does not have one weight per painting.
        """
        if n_styles is not None:
            check_styles(config.style_blend, n_styles)
        plan = cls(tuple(scale_plan(config, width, height)))
        check_shape(width, height, max(plan.scales[0][0]), "the photo")
        return plan

    def check_paintings(self, config: StyleConfig, sizes: Sequence[tuple[int, int]]) -> None:
        """Each painting (w, h) can be read at the coarsest scale (``check_shape``)."""
        long_side = style_long_side(config, self.scales[0][0])
        for i, (w, h) in enumerate(sizes):
            check_shape(w, h, long_side, f"painting {i + 1}" if len(sizes) > 1 else "the painting")

    @property
    def steps(self) -> int:
        return sum(n for _, n in self.scales)

    @property
    def final_size(self) -> tuple[int, int]:
        """(width, height) of the finished picture."""
        return self.scales[-1][0]

    def end_of_scale(self, scale: int) -> int:
        """The step that ends ``scale`` (1-based)."""
        return sum(n for _, n in self.scales[:scale])

    def work_done(self, step: int) -> float:
        """Pixel-steps done after ``step`` steps."""
        done, left = 0.0, max(0, step)
        for (w, h), n in self.scales:
            k = min(n, left)
            done, left = done + k * w * h, left - k
        return done

    def work_left(self, step: int) -> float:
        """Pixel-steps still to do after ``step`` steps."""
        return self.work_done(self.steps) - self.work_done(step)

    def eta(self, step: int, elapsed: float) -> Optional[float]:
        """Seconds left, from the time the steps so far took (None before the first step)."""
        if step <= 0 or step > self.steps:
            return None
        return elapsed * self.work_left(step) / self.work_done(step)

    def seconds_left(self, step: int, scale: int, seconds_per_step: float) -> float:
        """Seconds left, from the measured time of one step at the current ``scale`` (1-based)."""
        (w, h), _ = self.scales[scale - 1]
        return max(0.0, self.work_left(step)) / (w * h) * seconds_per_step

    def seconds(self, step_seconds: Callable[[int, int], float]) -> float:
        """Seconds for the whole run, given the cost of one step at a (width, height)."""
        return sum(n * step_seconds(w, h) for (w, h), n in self.scales)
