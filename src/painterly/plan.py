"""The run plan: what a run will do, decided once and asked by every front end.

``RunPlan.build(config, width, height, n_styles)`` checks that the options, the photo and the
number of paintings fit together, then answers the coarse-to-fine scales (size and steps of
each), the final size, the steps, and the work done or left at any step. ``stylize`` runs it;
the CLI's progress line, the store's ``submit``, the worker's ETA and the studio's time
estimate read it, so none of them works it out again. Torch-free, like ``config``.

``RunPlan.memory(config, budget)`` is the run's memory plan (issue 10, large prints): for each
scale, whole-image or block mode, the block size and the predicted peak bytes, from a model of
what a run keeps (below); it refuses a size that cannot fit. The block geometry (receptive
field, alignment, the tiles) is decided here too, and ``blocks.py`` runs what it is given.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Optional, Sequence

from .config import CONTENT_FULL_SIZE, MIN_AUTO_SCALE, MIN_SIZE, VGG_LAYERS, ConfigError, StyleConfig, parse_bytes
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


def content_weights(config: StyleConfig) -> dict[str, float]:
    """{layer: weight} of the content loss of a run of ``config`` (content_weight included).

    ``config.content_layers`` at ``content_weight`` each; below CONTENT_FULL_SIZE px, also the
    layer one block shallower than each (relu4_2 -> relu3_2) at ``content_fine`` times that, in
    full from half that size down and in proportion to log2(CONTENT_FULL_SIZE / size) between, so
    the picture changes smoothly with the size. Decided by the output size, once for the run:
    every scale and every block match the same content, and at CONTENT_FULL_SIZE px and above
    nothing changes.
    """
    weights = {k: config.content_weight for k in config.content_layers}
    below = min(1.0, max(0.0, math.log2(CONTENT_FULL_SIZE / config.size)))
    if config.content_fine and below > 0:
        for k in config.content_layers:
            finer = shallower_layer(k)
            if finer is not None and finer not in weights:
                weights[finer] = config.content_weight * config.content_fine * below
    return weights


def shallower_layer(layer: str) -> Optional[str]:
    """The same layer one VGG block shallower (relu4_2 -> relu3_2), or None where there is none
    (block 1, or relu3_4: block 2 has two convolutions)."""
    i = next(i for i, c in enumerate(layer) if c.isdigit())  # the block: relu[4]_2, pool[4]
    name = f"{layer[:i]}{int(layer[i]) - 1}{layer[i + 1 :]}"
    return name if name in VGG_LAYERS else None


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
class StepCost:
    """The cost of one optimisation step, t = overhead + per_mp * megapixels seconds, on one
    machine at one ``precision``; ``setup`` seconds per run (the network, the style targets).

    A step is one VGG forward and backward pass for both optimisers, so its time grows with the
    pixels; ``overhead`` is what does not (Python, the optimiser, small-kernel launches), and
    dominates at the coarse scales: an ETA that scaled a coarse step by pixels alone overshot
    by minutes and then collapsed (issue 14).
    """

    overhead: float
    per_mp: float
    precision: str = "fp32"
    setup: float = 4.0
    measured: bool = False  # timed on this machine (painterly.calibrate), not the figures below

    def step_seconds(self, config: StyleConfig, width: int, height: int) -> float:
        """Seconds for one step of ``config`` at ``width`` x ``height`` (its precision on this CPU)."""
        from .precision import STEP_COST, resolve  # torch-free

        factor = STEP_COST[resolve(config.precision, "cpu")] / STEP_COST.get(self.precision, 1.0)
        return factor * (self.overhead + self.per_mp * width * height / 1e6)

    @classmethod
    def fit(cls, timings: Sequence[tuple[int, float]], precision: str, setup: float) -> StepCost:
        """The line through (pixels, seconds per step) timings at two or more sizes (least squares).
        A fit that gives a negative term (a busy machine, sizes too small to tell) falls back to
        the largest size's seconds per pixel: the large sizes are where the time goes."""
        n = len(timings)
        mx = sum(p for p, _ in timings) / n
        my = sum(t for _, t in timings) / n
        var = sum((p - mx) ** 2 for p, _ in timings)
        slope = sum((p - mx) * (t - my) for p, t in timings) / var if var else 0.0
        overhead = my - slope * mx
        if slope <= 0 or overhead < 0:
            pixels, seconds = max(timings)
            slope, overhead = seconds / pixels, 0.0
        return cls(overhead, slope * 1e6, precision, setup, measured=True)


# Before this machine is measured: steps 2..8 of the default preset at 192 and 384 px, one
# thread, CPU time, on the 2-core development machine (fp32): 0.41 and 1.54 s per step, i.e.
# ~15.5 s per megapixel-step plus ~0.03 s. Setup covers loading the VGG (each scale's targets:
# TARGET_STEPS).
DEFAULT_STEP_COST = StepCost(overhead=0.03, per_mp=15.5, precision="fp32", setup=4.0)

# Each scale begins with its targets: the photo's and the paintings' features at that size (and
# for W2 their covariances' eigendecompositions), before its first step. Measured: that first
# step took 1.99 s against 0.93 at 1024 px, 9.06 s against 4.37 at 2048 px (the default at
# 2048 px, chelsea x starry night, 2-core Xeon with AMX, bf16): about one more step each
# (benchmarks/RESULTS.md, "Denormals, and what the estimate left out").
TARGET_STEPS = 1.0


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

    def step_costs(self, config: StyleConfig, cost: StepCost = DEFAULT_STEP_COST) -> tuple[float, ...]:
        """Seconds of one step at each scale by ``cost``, with block mode's extra work where the
        memory plan runs the scale in blocks (a print's full-size scale: 2x and more), and the
        recomputed layers where it runs whole above CHECKPOINT_PIXELS (``recompute_factor``)."""
        return _step_costs(self, config, cost)

    def scale_seconds(self, config: StyleConfig, cost: StepCost = DEFAULT_STEP_COST) -> tuple[float, ...]:
        """Seconds of each scale by ``cost``: its steps, and its targets (``TARGET_STEPS``)."""
        return tuple((n + TARGET_STEPS) * t for (_, n), t in zip(self.scales, self.step_costs(config, cost)))

    def estimate(self, config: StyleConfig, cost: StepCost = DEFAULT_STEP_COST) -> float:
        """Seconds for the whole run, setup included, by ``cost``."""
        return cost.setup + sum(self.scale_seconds(config, cost))

    def remaining(self, config: StyleConfig, cost: StepCost, step: int, elapsed: float) -> float:
        """Seconds left after ``step`` steps that took ``elapsed`` seconds (setup included): the
        one time-left figure, shown by the CLI, written by the worker and shown by the studio.

        The cost model says how the work left compares with the work done (overhead and pixels,
        scale by scale); the run's own pace so far says how fast this machine does it now. The
        pace is trusted in proportion to the work behind it (a prior worth a fifth of the run at
        the model's pace), so the figure starts at the estimate and moves smoothly, instead of
        swinging with the first, noisy steps.
        """
        left = 0.0
        count = 0
        for (_, n), t in zip(self.scales, self.step_costs(config, cost)):
            k = min(n, max(0, step - count))
            left += (n - k + (0.0 if k else TARGET_STEPS)) * t  # a scale's targets come before its first step
            count += n
        total = self.estimate(config, cost)
        done = total - left
        prior = 0.2 * total
        pace = (max(0.0, elapsed) + prior) / (done + prior)
        return left * pace

    def memory(self, config: StyleConfig, budget: Optional[int] = None) -> MemoryPlan:
        """The memory plan of this run under ``budget`` bytes (None: config.max_memory, else
        a safe share of the free RAM). Raises PlanError when even the smallest block cannot fit."""
        if budget is None:
            budget = parse_bytes(config.max_memory) if config.max_memory else default_budget()
        return memory_plan(config, self.scales, budget)


def _step_costs(plan: RunPlan, config: StyleConfig, cost: StepCost) -> tuple[float, ...]:
    from .precision import resolve  # torch-free

    whole = [cost.step_seconds(config, w, h) for (w, h), _ in plan.scales]
    return tuple(t * k for t, k in zip(whole, _scale_factors(plan, config, resolve(config.precision, "cpu"))))


@functools.lru_cache(maxsize=64)
def _scale_factors(plan: RunPlan, config: StyleConfig, precision: str) -> tuple[float, ...]:
    """Each scale's step cost relative to the cost line at its size, from the memory plan: block
    mode's extra work where it runs in blocks, the layers recomputed above CHECKPOINT_PIXELS
    where it runs whole (a block's graph is under that size). Decided once per run and process:
    asked at every progress write, and without ``max_memory`` the budget follows the free RAM, so
    a time left worked out afresh would jump with other programs' memory while the run keeps the
    plan it started with. ``precision`` (resolved) is part of the key because the plan's bytes
    depend on it."""
    del precision
    try:
        memory = plan.memory(config)
    except PlanError:  # refused before it runs; the estimate of the whole-image work stands
        return tuple(recompute_factor(config.last_layer, w * h) for (w, h), _ in plan.scales)
    return tuple(
        memory.block_cost(s) if s.block else recompute_factor(config.last_layer, s.size[0] * s.size[1])
        for s in memory.scales
    )


# --- the memory plan (issue 10: prints) --------------------------------------------------------
#
# Block mode (blocks.py, after Galerne et al. 2022, "Scaling Painting Style Transfer") optimises
# the whole image's objective while holding the autograd graph of one block at a time. Its
# geometry follows from the VGG layers a run reads: a block's features are the whole image's
# only where they see no padding, so each block is computed with a margin ("halo") as wide as
# the deepest layer's receptive field, and blocks start on the deepest layer's pixel grid so
# that its pooling windows fall where the whole image's do.


class PlanError(ConfigError):
    """The run cannot fit the memory budget; the message says what would."""


def layer_channels(layer: str) -> int:
    """Feature maps of a VGG19 layer: 64, 128, 256, 512, 512 for blocks 1-5 ('conv3_2'[4] is 3)."""
    return 64 * 2 ** (min(int(layer[4]), 4) - 1)


def layer_stride(layer: str) -> int:
    """Input pixels per feature position of a layer (2 ** the pools up to and including it)."""
    upto = VGG_LAYERS[: VGG_LAYERS.index(layer) + 1]
    return 2 ** sum(n.startswith("pool") for n in upto)


def receptive_field(layer: str) -> int:
    """Width in input pixels of what one feature position of ``layer`` sees (conv 3x3, pool 2x2/2).

    conv5_1/relu5_1: 156 px; relu4_1: 68; relu3_1: 24.
    """
    rf, jump = 1, 1
    for name in VGG_LAYERS[: VGG_LAYERS.index(layer) + 1]:
        if name.startswith("conv"):
            rf += 2 * jump
        elif name.startswith("pool"):
            rf += jump
            jump *= 2
    return rf


def block_geometry(last_layer: str) -> tuple[int, int]:
    """(halo, align) for block mode. A pixel's gradient comes through features up to half a
    receptive field away, and each of those features reads pixels up to half a field further:
    so a block's core is exact when its margin is one whole receptive field (rounded up to
    ``align``, the deepest layer's stride, on which every block edge lies)."""
    align = max(16, layer_stride(last_layer))
    return _up(receptive_field(last_layer), align), align


Box = tuple[int, int, int, int]  # (x0, y0, x1, y1), pixels, end exclusive


@dataclass(frozen=True)
class Tile:
    """One block: ``core`` is where its gradient is kept, ``pad`` the region it is computed on."""

    core: Box
    pad: Box


def tiles(width: int, height: int, block: int, halo: int) -> tuple[Tile, ...]:
    """Square cores of ``block`` px (smaller at the right and bottom edges) covering the image, each
    with ``halo`` px of margin clipped to the image; row by row."""
    out = []
    for y0 in range(0, height, block):
        for x0 in range(0, width, block):
            x1, y1 = min(width, x0 + block), min(height, y0 + block)
            pad = (max(0, x0 - halo), max(0, y0 - halo), min(width, x1 + halo), min(height, y1 + halo))
            out.append(Tile((x0, y0, x1, y1), pad))
    return tuple(out)


# The model of a run's peak resident memory (with the allocator set as allocator.py sets it):
#   process: Python, torch, the VGG weights (and the preview's networks)         BASE_BYTES
#   image-sized fp32 vectors: x, its gradient, the best and the kept images, the
#     optimiser's own (L-BFGS: direction, previous gradient; Adam: two moments)  IMAGE_COPIES
#   L-BFGS history: two vectors per entry, up to lbfgs_history() entries; torch's LBFGS appends
#     one after each step's gradient from the second step on, so a scale of n steps holds n - 2
#     entries while its last gradients run and n - 1 while its last direction is worked out
#     (counted: n - 1). A complete run's full-size scale holds all of them, a short run few
#   content targets: the content layers' activations of the photo, kept fp32
#   the autograd graph of the whole image or of one padded block: bytes per activation element
#     kept, over the layers up to the deepest one                                 GRAPH_BYTES
#   the backward pass's own buffers (gradients of the full-resolution maps), per pixel of the
#     graph                                                                       BACKWARD_BYTES
#   block mode after a whole-image scale: that scale leaves buffers mapped (measured: 477 MiB
#     after 1024 x 681 px whole, in buffers of 4 MiB and more that stay from one scale to the
#     next; what holds them is not found: not the optimiser, not the targets, mostly not oneDNN's
#     primitive cache). A later whole scale reuses them; blocks, smaller and of other shapes, do
#     not. Counted per pixel of the largest whole scale before                   AFTER_WHOLE_BYTES
# and PEAK_MARGIN over the sum, so that the plan is above what was measured, not on it.
# BASE, GRAPH and BACKWARD were fitted (least squares) to 3-step runs at 1024 and 2048 px;
# AFTER_WHOLE_BYTES and the margin to complete runs traced with `python -m benchmarks.memtrace`
# (benchmarks/RESULTS.md, "Prints": a complete run's peak against the plan, at 1024, 2048 and
# 4096 px, whole and in blocks, and single-scale block runs at 2048 and 8192 px). fp32 is not
# measured: taken as twice bf16's bytes, an upper bound.
BASE_BYTES = 821 * 2**20
IMAGE_COPIES = {"lbfgs": 6.0, "adam": 6.0}
GRAPH_BYTES = {"fp32": 4.2, "bf16": 2.1, "fp16": 2.1}
BACKWARD_BYTES = {"fp32": 2700.0, "bf16": 1350.0, "fp16": 1350.0}
AFTER_WHOLE_BYTES = 770.0
PEAK_MARGIN = 1.05
# Block mode: an extra forward pass per block (the statistics), the halo recomputed, and the
# assembled gradient image. Cost of a block step relative to a whole step over the same pixels.
# Measured: 1.27 at 1024 px in blocks of 512 (7.15 s per step against 2.92 whole, over 1.93x the
# pixels), 1.03 at 2048 px in blocks of 1024 (24.3 s against 16.5; the whole image recomputes
# two layers there, see CHECKPOINT_PIXELS, and blocks do not: 1.13 against a whole step that
# does not, ``recompute_factor``).
BLOCK_STEP_COST = 1.15
SAFE_SHARE = 0.8  # of the memory free when the run is planned, for a default budget
# A run in one piece keeps its freed buffers in the process where its peak plus HEAP_HOLES of it
# fits the budget (MemoryPlan.release_freed). Kept, the heap holds holes the plan does not count:
# peak RSS 8-29 % over the returned runs' at 512 to 2048 px with nothing mapped, 18-26 % over the
# plan's peak at 1024 and 2048 px (benchmarks/RESULTS.md, "The allocator"). Returned, every
# buffer is faulted in anew at every step: 17-31 % of a 512 px step, half of a 1024 or 2048 px
# bf16 one.
HEAP_HOLES = 0.5
HISTORY_BYTES = 512 * 2**20  # memory allowed for L-BFGS's history (see stylize._optimise)
# Above this many input pixels the VGG forward (vgg.VGG19.forward) recomputes these runs of
# layers during backward instead of keeping their outputs, the largest of a step's graph; 2 MP
# sits between 1024 px and 2048 px outputs. The memory model leaves them out of the graph there
# (``_graph_elements``) and the time model counts their second forward (``recompute_factor``).
CHECKPOINT_PIXELS = 2_000_000
RECOMPUTED = (("conv1_2", "relu1_2", "pool1"), ("conv2_2", "relu2_2", "pool2"))
_RECOMPUTED_LAYERS = tuple(n for run in RECOMPUTED for n in run)


def conv_macs(layer: str) -> float:
    """Multiply-adds per input pixel of VGG19's convolution ``layer`` (3 x 3 over the channels of
    the layer before it, at its stride)."""
    i = VGG_LAYERS.index(layer)
    cin = next((layer_channels(n) for n in reversed(VGG_LAYERS[:i]) if n.startswith("conv")), 3)
    return 9 * cin * layer_channels(layer) / layer_stride(layer) ** 2


def recompute_factor(last_layer: str, pixels: int) -> float:
    """A step's cost with the RECOMPUTED runs' second forward, relative to one without: 1 up to
    CHECKPOINT_PIXELS; above it, 1 + their convolutions' work over the step's (a forward and a
    backward to the input of every convolution up to ``last_layer``: the weights are frozen).
    For relu5_1, 1.10; measured 1.06-1.12 at 1448 x 965 px, bf16 (the default, chelsea x starry
    night, the limit lowered to 1 MP against not: 1.86 / 1.96 against 1.75 / 1.75 s a step)."""
    if pixels <= CHECKPOINT_PIXELS:
        return 1.0
    upto = VGG_LAYERS[: VGG_LAYERS.index(last_layer) + 1]
    again = sum(conv_macs(n) for run in RECOMPUTED if run[-1] in upto for n in run if n.startswith("conv"))
    return 1.0 + again / (2 * sum(conv_macs(n) for n in upto if n.startswith("conv")))


def lbfgs_history(pixels: int) -> int:
    """L-BFGS history entries for an RGB image of ``pixels``: 20, fewer when they would pass
    HISTORY_BYTES (two fp32 image vectors per entry), never under 5."""
    return max(5, min(20, HISTORY_BYTES // (2 * 3 * pixels * 4)))


def default_budget() -> int:
    """SAFE_SHARE of the RAM free now (MemAvailable), or 8 GB where /proc/meminfo is absent."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(SAFE_SHARE * int(line.split()[1]) * 1024)
    except OSError:
        pass
    return 8 * 10**9


def _graph_elements(last_layer: str, pixels: int) -> float:
    """Activation elements per input pixel of the layers a step's graph holds."""
    skip = _RECOMPUTED_LAYERS if pixels > CHECKPOINT_PIXELS else ()
    return sum(
        layer_channels(n) / layer_stride(n) ** 2
        for n in VGG_LAYERS[: VGG_LAYERS.index(last_layer) + 1]
        if not n.startswith("relu") and n not in skip
    )


def predict_peak(config: StyleConfig, size: tuple[int, int], steps: int, block: int = 0, after: int = 0) -> int:
    """Predicted peak bytes of a scale at ``size`` run for ``steps`` steps, whole (block 0) or in
    blocks of ``block`` px; ``after``: pixels of the largest whole-image scale run before it
    (``whole_before``)."""
    from .precision import resolve  # torch-free; the CPU's choice (a GPU plan passes its budget)

    w, h = size
    pixels = w * h
    copies = IMAGE_COPIES.get(config.optimizer, 6.0)
    if config.optimizer == "lbfgs":
        copies += 2 * min(lbfgs_history(pixels), max(0, steps - 1))
    precision = resolve(config.precision, "cpu")
    leftover = 0.0
    if block:
        halo, _ = block_geometry(config.last_layer)
        graph_px = _widest(w, block, halo) * _widest(h, block, halo)  # the largest padded block
        copies += 1  # the assembled gradient
        leftover = AFTER_WHOLE_BYTES * after
    else:
        graph_px = pixels
    content = sum(4 * layer_channels(k) * pixels / layer_stride(k) ** 2 for k in content_weights(config))
    per_px = GRAPH_BYTES[precision] * _graph_elements(config.last_layer, graph_px) + BACKWARD_BYTES[precision]
    graph = per_px * graph_px
    return int(PEAK_MARGIN * (BASE_BYTES + 12 * pixels * copies + content + graph + leftover))


def whole_before(scales: Sequence[ScaleMemory]) -> int:
    """Pixels of the largest of ``scales`` (the ones run before) that ran whole; 0 if none."""
    return max((s.size[0] * s.size[1] for s in scales if not s.block), default=0)


def _widest(length: int, block: int, halo: int) -> int:
    """The widest padded block along one side (tiles() is a grid: the largest block is the widest
    by the tallest)."""
    return max(min(length, x + block + halo) - max(0, x - halo) for x in range(0, length, block))


@dataclass(frozen=True)
class ScaleMemory:
    """One scale of the memory plan: block 0 = whole image."""

    size: tuple[int, int]
    steps: int
    block: int
    tiles: int
    peak: int


@dataclass(frozen=True)
class MemoryPlan:
    budget: int
    halo: int
    align: int
    scales: tuple[ScaleMemory, ...]

    @property
    def peak(self) -> int:
        return max(s.peak for s in self.scales)

    @property
    def release_freed(self) -> bool:
        """Whether the run returns freed buffers to the system (allocator.py): what this plan's
        peak assumes. Kept in the process they save the kernel's page faults (a third of a 512 px
        step, half of a 1024 or 2048 px one), but their holes add to the peak, which the plan does
        not count; so only a run in one piece whose peak and holes fit its budget keeps them. A run
        in blocks is one whose whole image did not fit: its peak must hold."""
        return any(s.block for s in self.scales) or self.kept_peak > self.budget

    @property
    def kept_peak(self) -> int:
        """The peak the run is allowed with its freed buffers kept: the plan's and HEAP_HOLES of it."""
        return int(self.peak * (1 + HEAP_HOLES))

    @property
    def kept_note(self) -> str:
        """' (up to N GB with freed buffers kept, for speed)' where the run keeps them, else '': what
        follows the predicted peak wherever it is shown (``--plan``, the studio's memory line)."""
        return "" if self.release_freed else f" (up to {gb(self.kept_peak)} with freed buffers kept, for speed)"

    def smaller(self, config: StyleConfig, scale: int) -> MemoryPlan:
        """The plan with ``scale`` (0-based) in blocks half as wide as now (or half the long side,
        from whole-image mode): what a run falls back to after running out of memory. Raises
        PlanError when the blocks cannot get smaller."""
        s = self.scales[scale]
        now = s.block or max(s.size)
        block = _up(now // 2, self.align)
        if block >= now or block < self.align:
            raise PlanError(f"out of memory at {s.size[0]}x{s.size[1]} even in blocks of {now} px")
        n = len(tiles(*s.size, block, self.halo))
        peak = predict_peak(config, s.size, s.steps, block, whole_before(self.scales[:scale]))
        new = ScaleMemory(s.size, s.steps, block, n, peak)
        return MemoryPlan(self.budget, self.halo, self.align, self.scales[:scale] + (new,) + self.scales[scale + 1 :])

    def step_factors(self) -> tuple[float, ...]:
        """Each scale's step cost relative to a whole-image step at its size (1 when whole)."""
        return tuple(self.block_cost(s) if s.block else 1.0 for s in self.scales)

    def lines(self, seconds: Optional[Sequence[float]] = None, total: Optional[float] = None) -> list[str]:
        """The plan in words, one line per scale; with the run plan's ``seconds`` of each scale
        (``RunPlan.scale_seconds``) and its ``total`` (``RunPlan.estimate``), the time too."""
        out = [f"memory budget {gb(self.budget)}, predicted peak {gb(self.peak)}{self.kept_note}"]
        for i, s in enumerate(self.scales):
            mode = f"blocks of {s.block} px ({s.tiles} blocks, overlap {self.halo} px)" if s.block else "whole image"
            line = f"scale {i + 1}: {s.size[0]}x{s.size[1]}, {s.steps} steps, {mode}, peak {gb(s.peak)}"
            out.append(line if seconds is None else f"{line}, about {seconds[i]:.0f} s")
        if total is not None:
            out.append(
                f"about {total:.0f} s on this machine" if total < 120 else f"about {total / 60:.1f} min on this machine"
            )
        return out

    def block_cost(self, s: ScaleMemory) -> float:
        """Cost of a block step relative to a whole-image step at the same size."""
        padded = sum((t.pad[2] - t.pad[0]) * (t.pad[3] - t.pad[1]) for t in tiles(*s.size, s.block, self.halo))
        return BLOCK_STEP_COST * padded / (s.size[0] * s.size[1])


def gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def _up(v: int, a: int) -> int:
    return -(-v // a) * a


def _blocks_to_try(size: tuple[int, int], align: int) -> list[int]:
    """Block sizes from large to small, each splitting a side into n about equal parts (splitting
    the short side first makes strips: 2048 x 1362 in two blocks of 1376, not four of 1024)."""
    long = max(size)
    out = {_up(-(-side // n), align) for side in size for n in range(1, side // align + 1)}
    return sorted((b for b in out if b < long), reverse=True)


def memory_plan(config: StyleConfig, scales: Sequence[Scale], budget: int) -> MemoryPlan:
    """Whole image where it fits ``budget`` (unless config.block_size asks for blocks), else the
    largest blocks that fit. Raises PlanError with what would fit.

    A whole-image scale leaves memory behind that a later block scale pays for (AFTER_WHOLE_BYTES),
    so where the later scales cannot fit, the plan is tried again with the larger earlier scales
    in blocks too, largest first: slower steps there, rather than a refusal."""
    sizes = sorted({w * h for (w, h), _ in scales}, reverse=True)
    refused: Optional[PlanError] = None
    for whole_up_to in sizes:
        try:
            return _memory_plan(config, scales, budget, whole_up_to)
        except PlanError as e:
            refused = refused or e
    assert refused is not None
    raise refused


def _memory_plan(config: StyleConfig, scales: Sequence[Scale], budget: int, whole_up_to: int) -> MemoryPlan:
    """memory_plan with whole-image mode allowed only for scales of at most ``whole_up_to`` pixels."""
    halo, align = block_geometry(config.last_layer)
    smallest = 4 * align  # smaller blocks would spend nearly all their time on the overlap
    out: list[ScaleMemory] = []
    for size, steps in scales:
        after = whole_before(out)
        if config.block_size and config.block_size < max(size):
            choices = [_up(config.block_size, align)]
        elif size[0] * size[1] <= whole_up_to and predict_peak(config, size, steps) <= budget:
            out.append(ScaleMemory(size, steps, 0, 1, predict_peak(config, size, steps)))
            continue
        else:
            choices = [b for b in _blocks_to_try(size, align) if b >= smallest]
        fitting = [b for b in choices if predict_peak(config, size, steps, b, after) <= budget]
        if not fitting:
            raise PlanError(_too_big(config, size, steps, budget, choices[-1] if choices else smallest, after))
        if config.style_loss == "sliced":
            raise PlanError(
                f"{size[0]}x{size[1]} needs block mode, and the 'sliced' style loss sorts every position of the "
                "whole image at once, so it cannot run in blocks; use --style-loss w2 or gram, a smaller --size, "
                "or a larger --max-memory"
            )
        block = fitting[0]
        n = len(tiles(*size, block, halo))
        out.append(ScaleMemory(size, steps, block, n, predict_peak(config, size, steps, block, after)))
    return MemoryPlan(budget, halo, align, tuple(out))


def _too_big(config: StyleConfig, size: tuple[int, int], steps: int, budget: int, smallest: int, after: int) -> str:
    need = predict_peak(config, size, steps, smallest, after)
    w, h = size
    fits = [
        s
        for s in range(max(w, h), MIN_SIZE - 1, -64)
        if predict_peak(config, fit_size(w, h, s), steps, smallest, after) <= budget
    ]
    what = f"the largest size that fits is about {fits[0]} px" if fits else "nothing fits it"
    return (
        f"{w}x{h} needs about {gb(need)} even in blocks of {smallest} px, over the memory budget of "
        f"{gb(budget)}; {what}, or give it --max-memory {-(-need // 10**9)}GB"
    )
