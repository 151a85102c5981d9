"""Time a few steps of the real engine at small sizes: this machine's ``plan.StepCost``.

The studio runs ``python -m painterly.calibrate`` once when it starts (in its own process, so
the web server never loads torch), and its time estimates scale the measured cost by pixels
through the run plan. A few steps at 160 and 320 px take a few seconds; the figures written
in the code (``plan.DEFAULT_STEP_COST``) were off by -30 % to +5 % on other machines and loads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Optional, Sequence

import numpy as np
from PIL import Image

from .config import preset
from .plan import StepCost

SIZES = (160, 320)  # long sides timed; two, so that the fit separates overhead from pixels
STEPS = 6  # per size; the first step also computes the targets and is not counted


def _picture(width: int, height: int, seed: int) -> Image.Image:
    """A textured picture (a flat one would make the optimiser stop early)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    a = np.stack([xx / width, yy / height, 0.5 + 0.5 * np.sin(xx / 5 + seed)], -1) * 0.7 + 0.3 * rng.random(
        (height, width, 3)
    )
    return Image.fromarray((a.clip(0, 1) * 255).astype(np.uint8), "RGB")


def measure(sizes: Sequence[int] = SIZES, steps: int = STEPS, preset_name: str = "default") -> StepCost:
    """Run ``steps`` steps of ``preset_name`` (one scale, from the photo) at each of ``sizes`` and
    fit the cost line through the fastest step of each (steps 2 on: the least disturbed by
    whatever else the machine does at that moment). ``setup`` is the first run's wait for its
    first step, less a step: loading the network and the targets."""
    from .stylize import stylize

    photo, painting = _picture(384, 256, 0), _picture(256, 256, 1)
    timings: list[tuple[int, float]] = []
    setup: Optional[float] = None
    precision = "fp32"
    for size in sizes:
        config = preset(preset_name, size=size, steps=steps, scales=1, init="content", preview_every=0)
        stamps: list[float] = []
        pixels = 0

        def seen(p, stamps=stamps) -> None:
            nonlocal precision, pixels
            stamps.append(time.perf_counter())
            precision, pixels = p.precision, p.size[0] * p.size[1]

        t0 = time.perf_counter()
        stylize(photo, painting, config, on_progress=seen)
        per_step = float(np.min(np.diff(stamps))) if len(stamps) > 1 else stamps[0] - t0
        timings.append((pixels, per_step))
        if setup is None:
            setup = max(0.0, stamps[0] - t0 - per_step)
    return StepCost.fit(timings, precision, setup or 0.0)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Print this machine's StepCost as one JSON object (for the studio, which reads it).
    ``--nice N``: run N steps below the caller's priority, as the studio's workers do."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--nice"] and len(args) == 2 and hasattr(os, "nice"):
        os.nice(int(args[1]))
    cost = measure()
    print(json.dumps({k: getattr(cost, k) for k in ("overhead", "per_mp", "precision", "setup")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
