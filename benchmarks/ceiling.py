"""How close one optimisation step comes to this machine's convolution ceiling.

- ``step_flops``: the arithmetic of one step, counted from the layer shapes: every 3x3
  convolution up to the deepest layer used, forward (2*9*Cin*Cout*H*W) and backward to its
  input (the same again; no weight gradients, the VGG is frozen), plus the Gram matrices
  (forward 2*C^2*HW, backward 2*C^2*HW: one product, (dG + dG^T) F).
  ReLU, pooling and the losses are memory-bound and left out: they are < 1 % of the FLOPs.
- ``conv_ceiling``: dense 3x3 convolution throughput, forward + input gradient, fp32,
  channels_last, ``THREADS`` threads, on VGG's own layer shapes; the best shape is the ceiling.
- ``step_time``: the median wall time of one real ``stylize`` step (single scale, L-BFGS, the
  default preset's layers) at a square size.

Both are also timed in process CPU time. On a quiet machine the wall-time fraction is the figure;
on a shared one, wall times depend on what else ran at that moment, and the CPU-time fraction
(run with ``OMP_WAIT_POLICY=PASSIVE`` so that waiting threads do not spin) is the fairer one.
"""

from __future__ import annotations

import statistics
import time
from typing import Sequence

import torch

THREADS = 2

# (name, cin, cout, pooling steps before it) for VGG19's convolutions.
_CONVS = (
    ("conv1_1", 3, 64, 0), ("conv1_2", 64, 64, 0),
    ("conv2_1", 64, 128, 1), ("conv2_2", 128, 128, 1),
    ("conv3_1", 128, 256, 2), ("conv3_2", 256, 256, 2), ("conv3_3", 256, 256, 2), ("conv3_4", 256, 256, 2),
    ("conv4_1", 256, 512, 3), ("conv4_2", 512, 512, 3), ("conv4_3", 512, 512, 3), ("conv4_4", 512, 512, 3),
    ("conv5_1", 512, 512, 4),
)  # fmt: skip
_GRAM_CHANNELS = {"relu1_1": (64, 0), "relu2_1": (128, 1), "relu3_1": (256, 2), "relu4_1": (512, 3), "relu5_1": (512, 4)}


def step_flops(w: int, h: int, last_conv: str = "conv5_1",
               style_layers: Sequence[str] = tuple(_GRAM_CHANNELS)) -> dict[str, float]:  # fmt: skip
    """FLOPs of one forward + backward-to-image step at (w, h): {"conv": ..., "gram": ..., "total": ...}."""
    conv = 0.0
    for name, cin, cout, pools in _CONVS:
        hw = (h >> pools) * (w >> pools)
        conv += 2 * (2 * 9 * cin * cout * hw)  # forward + input gradient
        if name == last_conv:
            break
    gram = 0.0
    for layer in style_layers:
        c, pools = _GRAM_CHANNELS[layer]
        gram += 4 * c * c * (h >> pools) * (w >> pools)
    return {"conv": conv, "gram": gram, "total": conv + gram}


def _time_conv(cin: int, cout: int, hw: int, reps: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one forward + input-gradient of a frozen 3x3 conv, channels_last."""
    conv = torch.nn.Conv2d(cin, cout, 3, padding=1).requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.randn(1, cin, hw, hw).to(memory_format=torch.channels_last).requires_grad_(True)
    g = torch.randn(1, cout, hw, hw).to(memory_format=torch.channels_last)
    times, cpus = [], []
    for i in range(reps + 1):
        t, c = time.perf_counter(), time.process_time()
        y = conv(x)
        (gx,) = torch.autograd.grad(y, x, g)
        if i:  # the first call picks and builds oneDNN's kernels
            times.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return statistics.median(times), statistics.median(cpus)


def conv_ceiling(size: int = 512, reps: int = 3) -> dict:
    """GFLOP/s of forward + input-gradient for each distinct VGG19 conv shape at ``size``."""
    torch.set_num_threads(THREADS)
    shapes = {}
    for _, cin, cout, pools in _CONVS:
        if cin == 3:
            continue  # 3 input channels is not a dense GEMM-like shape; it is not a ceiling
        shapes[(cin, cout, size >> pools)] = None
    rows = []
    for cin, cout, hw in shapes:
        t, c = _time_conv(cin, cout, hw, reps)
        flop = 4 * 9 * cin * cout * hw * hw
        rows.append({"cin": cin, "cout": cout, "hw": hw, "seconds": t, "gflops": flop / t / 1e9,
                     "cpu_seconds": c, "gflop_per_cpu_s": flop / c / 1e9})  # fmt: skip
    return {"size": size, "shapes": rows, "ceiling_gflops": max(r["gflops"] for r in rows),
            "ceiling_gflop_per_cpu_s": max(r["gflop_per_cpu_s"] for r in rows)}  # fmt: skip


def step_time(size: int, steps: int = 6, **overrides) -> tuple[float, float]:
    """Median (wall, CPU) seconds per step of a real single-scale stylize run on a square ``size`` image."""
    import numpy as np
    from PIL import Image

    from painterly.config import preset
    from painterly.stylize import stylize

    torch.set_num_threads(THREADS)
    rng = np.random.default_rng(0)
    content = Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))
    style = Image.fromarray((rng.random((size, size, 3)) * 255).astype(np.uint8))
    cfg = preset("default", size=size, scales=1, steps=steps, preview_every=0, **overrides)
    stamps: list[tuple[float, float]] = []
    stylize(content, style, cfg, on_progress=lambda p: stamps.append((time.perf_counter(), time.process_time())))
    # Differences skip step 1 (targets, kernel choice).
    wall = statistics.median(b[0] - a[0] for a, b in zip(stamps, stamps[1:]))
    cpu = statistics.median(b[1] - a[1] for a, b in zip(stamps, stamps[1:]))
    return wall, cpu


def ceiling_report(sizes: Sequence[int] = (256, 512), steps: int = 6) -> dict:
    """Ceiling at 512 px shapes, and for each size: FLOPs, step time, fraction of the ceiling."""
    from .runner import _busy_jiffies

    busy0, cpu0, t0 = _busy_jiffies(), time.process_time(), time.time()
    ceil = conv_ceiling(512)
    rows = []
    for size in sizes:
        fl = step_flops(size, size)
        t, c = step_time(size, steps)
        achieved = fl["total"] / t / 1e9
        per_cpu = fl["total"] / c / 1e9
        rows.append({"size": size, "gflop": fl["total"] / 1e9, "conv_gflop": fl["conv"] / 1e9, "step_s": t,
                     "gflops": achieved, "fraction": achieved / ceil["ceiling_gflops"], "step_cpu_s": c,
                     "fraction_cpu": per_cpu / ceil["ceiling_gflop_per_cpu_s"]})  # fmt: skip
    wall = time.time() - t0
    others = max(0.0, (_busy_jiffies() - busy0 - (time.process_time() - cpu0)) / wall)
    return {"ceiling": ceil, "steps": rows, "others_cores": others}
