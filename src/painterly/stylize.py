"""stylize(): the one optimisation loop every front end calls.

Gatys, Ecker & Bethge (2015): start from an image, then move its pixels by gradient
descent so that its VGG19 features match the content photo's (deep layers) and its Gram
matrices match the painting's (several layers). Additions from later work, each optional:
coarse-to-fine scales (as in jcjohnson/neural-style's multires recipes and crowsonkb's
style-transfer-pytorch), colour preservation (Gatys et al. 2016), total variation.
"""

from __future__ import annotations

import math
import time
from typing import Literal, Optional, Sequence, Union, overload

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import blocks
from . import images as im
from . import plan as pl
from . import precision as prec
from .allocator import release_freed_buffers
from .config import DEFAULT, StyleConfig
from .losses import (
    STYLE_LOSS_SCALE,
    TemporalTarget,
    blend_statistics,
    content_loss,
    default_layer_weights,
    sliced_projections,
    style_distance,
    style_statistic,
    tv_loss,
    wide_dtype,
)
from .plan import RunPlan, style_long_side
from .progress import Cancelled, Progress, ProgressCallback
from .vgg import get_vgg

Styles = Union[Image.Image, Sequence[Image.Image]]


def pick_device(name: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU for "auto"; an explicit name is checked."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' asked for, but no CUDA GPU is available; use --device auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise RuntimeError("device 'mps' asked for, but Apple MPS is not available; use --device auto")
    return torch.device(name)


@overload
def stylize(
    content: Image.Image,
    styles: Styles,
    config: StyleConfig = DEFAULT,
    *,
    on_progress: Optional[ProgressCallback] = None,
    init_image: Optional[Image.Image] = None,
    start_step: int = 0,
    temporal: Optional[TemporalTarget] = None,
    depth: Literal[8] = 8,
) -> Image.Image: ...


@overload
def stylize(
    content: Image.Image,
    styles: Styles,
    config: StyleConfig = DEFAULT,
    *,
    on_progress: Optional[ProgressCallback] = None,
    init_image: Optional[Image.Image] = None,
    start_step: int = 0,
    temporal: Optional[TemporalTarget] = None,
    depth: Literal[16],
) -> np.ndarray: ...


def stylize(
    content: Image.Image,
    styles: Styles,
    config: StyleConfig = DEFAULT,
    *,
    on_progress: Optional[ProgressCallback] = None,
    init_image: Optional[Image.Image] = None,
    start_step: int = 0,
    temporal: Optional[TemporalTarget] = None,
    depth: Literal[8, 16] = 8,
) -> Union[Image.Image, np.ndarray]:
    """Repaint ``content`` in the style of ``styles``.

    Pure: takes and returns PIL images; prints nothing and touches no files.

    Args:
        content: the photo (any size; RGB).
        styles: one painting or several (blended by ``config.style_blend``).
        config: every option of the run (see StyleConfig and the presets).
        on_progress: called after every step with a Progress; may raise Cancelled.
        init_image: the start image when ``config.init == "image"``, or the checkpoint to
            resume from with ``start_step``.
        start_step: resume a run: skip this many steps of the schedule, starting from
            ``init_image`` (a Progress.image saved at that step).
        temporal: a video frame's temporal loss term (the previous stylised frame, warped;
            see painterly.video), added to the loss as "temporal".
        depth: 8 for a PIL image; 16 for a (H, W, 3) uint16 array (for 16-bit PNG or TIFF, as
            images.save_image writes it), PIL having no 16-bit RGB mode.

    Returns:
        The stylised image, long side ``config.size``, the content's aspect ratio. If the
        callback raised Cancelled, the best image so far, at that same size.

    Raises:
        plan.PlanError: the size cannot fit the memory budget (``config.max_memory``), even in
            blocks; the message says what would.
    """
    style_list = [styles] if isinstance(styles, Image.Image) else list(styles)
    if (config.init == "image" or start_step) and init_image is None:
        raise ValueError("init_image is required with init='image' or start_step > 0")
    if not 0 <= start_step < config.steps:
        raise ValueError(f"start_step must be in [0, {config.steps}), got {start_step}")

    content = im.load_image(content, name="content image")
    plan = RunPlan.build(config, *content.size, n_styles=len(style_list))
    device = pick_device(config.device)
    memory = plan.memory(config, _gpu_budget(config, device))  # refuses what cannot fit, before any work
    release_freed_buffers(memory.release_freed)  # the plan's peak assumes it where it must hold (allocator.py)
    style_list = [im.load_image(s, name="style image") for s in style_list]
    plan.check_paintings(config, [s.size for s in style_list])
    if config.color == "histogram":
        style_list = [im.match_color(s, content, config.color_strength) for s in style_list]
    photo = content  # keeps its colours for the end of a luminance-only run
    if config.color == "luminance":
        # Gatys et al. (2016): style transferred on luminance only, the paintings' luminance
        # matched to the photo's first; the photo's colours go back on in finish().
        style_list = [im.match_luminance(s, content, config.color_strength) for s in style_list]
        content = im.luminance_only(content)
    blend = config.style_blend or (1.0,) * len(style_list)

    if config.threads:
        torch.set_num_threads(config.threads)
    net = get_vgg(config.last_layer, config.pooling, config.weights, str(device))
    cw = pl.content_weights(config)  # {layer: weight}: below 512 px also a shallower layer (thin structures)
    cl, sl = tuple(cw), config.style_layers
    kind = config.style_loss
    lw = config.style_layer_weights or default_layer_weights(sl, kind)
    layers = tuple(dict.fromkeys(cl + sl))
    norm = config.gram == "normalised"
    precision = prec.resolve(config.precision, device.type)
    prec.check(precision, device.type)  # before anything is computed

    def features(img: torch.Tensor, names: Sequence[str]) -> dict[str, torch.Tensor]:
        # Convolutions in the run's precision; the statistics and losses read these activations
        # in fp32 and send their gradient back in the activations' own precision (losses.py).
        with prec.autocast(precision, device.type):
            return net(img, names)

    def to_dev(img: Image.Image) -> torch.Tensor:
        return im.to_tensor(img).to(device)

    def finish(x: torch.Tensor, depth: int = 8):
        if tuple(x.shape[-1:-3:-1]) != final_size:
            x = F.interpolate(x, size=final_size[::-1], mode="bicubic", align_corners=False)
        out = im.to_array(x, depth)  # (H, W, 3), converted a band of rows at a time
        if config.color == "luminance":
            im.keep_colours(out, photo)
        return Image.fromarray(out, "RGB") if depth == 8 else out

    def objective(si: int, size: tuple[int, int]) -> Optional[blocks.BlockObjective]:
        """Block mode for this scale when the memory plan says so (None: the whole image at once)."""
        block = memory.scales[si].block
        if not block:
            return None
        return blocks.BlockObjective(
            features, pl.tiles(*size, block, memory.halo), content_layers=cl, content_targets=c_targets,
            content_weights=[cw[k] for k in cl], content_reduction=config.content_reduction, style_layers=sl,
            style_targets=s_targets, layer_weights=lw, style_weight=config.style_weight * STYLE_LOSS_SCALE[kind],
            kind=kind, normalize=norm,
        )  # fmt: skip

    final_size = plan.final_size
    gen = torch.Generator().manual_seed(config.seed)
    t0 = time.perf_counter()
    done = 0  # steps of the schedule completed (including skipped ones when resuming)
    x: Optional[torch.Tensor] = None
    best: Optional[torch.Tensor] = None  # lowest-loss image of the current scale
    avg: Optional[_Average] = None  # iterate averaging of the current scale (config.average)

    try:
        for si, (size, n_steps) in enumerate(plan.scales):
            if done + n_steps <= start_step:
                done += n_steps
                continue
            # --- targets for this scale (no graph needed) ---
            c_img = content.resize(size, Image.Resampling.LANCZOS)
            # Sliced Wasserstein directions: fixed for the scale, so L-BFGS sees one objective.
            proj = {k: sliced_projections(net.channels(k), config.seed + 7919 * si + i, device)
                    for i, k in enumerate(sl)} if kind == "sliced" else {}  # fmt: skip
            # no_grad, not inference_mode: the W2 target's matrices take part in the loss's graph.
            # In block mode the photo's and the paintings' features are taken block by block too.
            block = memory.scales[si].block
            with torch.no_grad():
                c_t = to_dev(c_img)
                if block:
                    c_targets = blocks.stitch(features, c_t, cl, pl.tiles(*size, block, memory.halo)) if cl else {}
                else:
                    # Kept in fp32 (as plan.py counts them), cast once here rather than at every step.
                    c_targets = {k: v.to(wide_dtype(v), copy=True) for k, v in features(c_t, cl).items()} if cl else {}
                del c_t
                s_targets = {}
                if sl:
                    per_style = []
                    for s in style_list:
                        s_t = to_dev(im.resize_long_side(s, style_long_side(config, size)))
                        if block:
                            cut = pl.tiles(s_t.shape[-1], s_t.shape[-2], block, memory.halo)
                            per_style.append(blocks.statistics(features, s_t, sl, cut, kind, normalize=norm))
                            continue
                        feats = features(s_t, sl)
                        per_style.append(
                            {k: style_statistic(feats[k], kind, normalize=norm, projections=proj.get(k)) for k in sl}
                        )
                    s_targets = {k: blend_statistics([p[k] for p in per_style], blend, kind) for k in sl}
            in_blocks = objective(si, size)

            # --- start image for this scale ---
            if x is None:
                x = _initial(config, content, c_img, style_list, size, init_image, start_step, gen).to(device)
            else:
                x = F.interpolate(x.detach(), size=(size[1], size[0]), mode="bicubic", align_corners=False)
            if config.clamp:
                x = x.clamp(0, 1)
            x = x.contiguous().requires_grad_(True)

            best_loss = math.inf
            avg = _Average(x, config.average) if config.average else None

            def closure() -> tuple[torch.Tensor, dict[str, float]]:
                nonlocal best, best_loss
                terms: dict[str, torch.Tensor] = {}
                carried = 0.0  # block mode: the content and style gradient, assembled from blocks
                if in_blocks is not None:
                    values, grad = in_blocks(x)
                    terms = {k: torch.tensor(v) for k, v in values.items()}
                    carried = blocks.carry(x, grad)
                else:
                    feats = features(x, layers)
                    if cl:
                        terms["content"] = sum(
                            cw[k] * content_loss(feats[k], c_targets[k], config.content_reduction) for k in cl
                        )
                    if sl:
                        terms["style"] = (
                            config.style_weight
                            * STYLE_LOSS_SCALE[kind]
                            * sum(
                                w
                                * style_distance(feats[k], s_targets[k], kind, normalize=norm, projections=proj.get(k))
                                for k, w in zip(sl, lw)
                            )
                        )
                if config.tv_weight:
                    terms["tv"] = config.tv_weight * tv_loss(x)
                if temporal is not None:
                    terms["temporal"] = temporal.loss(x)
                total = sum(terms.values()) + carried
                value = float(total.detach())
                # The loss is of x as it is now, before the optimiser moves it: remember the
                # best-scoring image of this scale for a cancelled run.
                if value < best_loss:
                    best, best_loss = x.detach().clone(), value
                return total, {k: float(v.detach()) for k, v in terms.items()}  # type: ignore[return-value]

            def shown() -> torch.Tensor:
                """The image this scale stands for: the running average where averaging is on."""
                assert x is not None
                return avg.get() if avg is not None and avg.weight else x

            took = max(0, start_step - done)  # steps of this scale done (resuming, or before a fallback)
            while took < n_steps:
                try:
                    for step_loss, terms in _optimise(config, x, closure, n_steps - took):
                        took += 1
                        step = done + took
                        if avg is not None:
                            avg.update(x)
                        if on_progress is not None:
                            last = step == done + n_steps
                            want_image = last or (config.preview_every and step % config.preview_every == 0)
                            on_progress(
                                Progress(
                                    step=step,
                                    steps=config.steps,
                                    scale=si + 1,
                                    scales=len(plan.scales),
                                    size=size,
                                    loss=step_loss,
                                    losses=terms,
                                    elapsed=time.perf_counter() - t0,
                                    image=finish(shown()) if want_image else None,
                                    precision=precision,
                                    block=memory.scales[si].block,
                                )
                            )
                except Exception as e:
                    # Out of memory (a GPU's allocator, or RAM taken by others meanwhile): go on from
                    # this x, the steps done kept, in blocks half as wide (the optimiser's history is
                    # dropped, as after an undone step). PlanError when blocks cannot get smaller.
                    if not blocks.out_of_memory(e):
                        raise
                    memory = memory.smaller(config, si)
                    release_freed_buffers(memory.release_freed)
                    in_blocks = objective(si, size)
                    with torch.no_grad():
                        x.grad = None
            done += n_steps
            x = shown().detach()
    except Cancelled:
        # Mid-scale, the best-scoring image of this scale (with averaging on, the average so far);
        # before any step, the start image.
        if avg is not None and avg.weight:
            return finish(avg.get(), depth)
        return finish(best if best is not None else (x.detach() if x is not None else im.to_tensor(content)), depth)
    assert x is not None
    return finish(x, depth)


class _Average:
    """An exponential moving average of the image, bias-corrected so that it is the image itself
    after one update (as in crowsonkb's style_transfer: value / (1 - decay^n))."""

    def __init__(self, x: torch.Tensor, decay: float) -> None:
        self.decay, self.weight = decay, 0.0
        self.value = torch.zeros_like(x.detach())

    def update(self, x: torch.Tensor) -> None:
        with torch.no_grad():
            self.value.mul_(self.decay).add_(x.detach(), alpha=1 - self.decay)
        self.weight = self.weight * self.decay + (1 - self.decay)

    def get(self) -> torch.Tensor:
        return self.value / self.weight


def _gpu_budget(config: StyleConfig, device: torch.device) -> Optional[int]:
    """On a CUDA GPU with no max_memory set, a safe share of its free memory (else the plan decides)."""
    if config.max_memory or device.type != "cuda":
        return None
    return int(pl.SAFE_SHARE * torch.cuda.mem_get_info(device)[0])


def _initial(
    config: StyleConfig,
    content: Image.Image,
    c_img: Image.Image,
    styles: list[Image.Image],
    size: tuple[int, int],
    init_image: Optional[Image.Image],
    start_step: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """The first image to optimise, at ``size``."""
    if init_image is not None and (start_step or config.init == "image"):
        return im.to_tensor(im.load_image(init_image, name="start image").resize(size, Image.Resampling.LANCZOS))
    if config.init == "noise":
        return torch.rand((1, 3, size[1], size[0]), generator=gen)
    if config.init == "preview":
        from .preview import preview  # lazy: onnxruntime is only needed here

        pv = preview(content, styles, size=max(size), style_blend=config.style_blend)
        return im.to_tensor(pv.resize(size, Image.Resampling.LANCZOS))
    return im.to_tensor(c_img)


BLOWUP = 1.5  # a step that multiplies the loss by more than this is undone (see _optimise)


def _optimise(config: StyleConfig, x: torch.Tensor, closure, n: int):
    """Yield (loss, terms) after each of n steps on x."""
    if n <= 0:
        return
    if config.optimizer == "adam":
        opt = torch.optim.Adam([x], lr=config.lr)
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss, terms = closure()
            loss.backward()
            opt.step()
            if config.clamp:
                with torch.no_grad():
                    x.clamp_(0, 1)
            yield float(loss.detach()), terms
        return
    # L-BFGS with one iteration per step() keeps its history between calls, so it is the
    # same algorithm as one long call, but yields control (progress, cancel) every step.
    # L-BFGS keeps two image-sized vectors per history entry: 20 entries are 1.3 GB at 2048 px,
    # which took a 2048 px run to 8.3 GB peak (benchmarks/RESULTS.md, memory). Capping the
    # history at plan.HISTORY_BYTES keeps 20 entries up to about 1.1 megapixels, fewer only above.
    history = pl.lbfgs_history(x.numel() // 3)

    def fresh() -> torch.optim.LBFGS:
        return torch.optim.LBFGS(
            [x], lr=config.lr, max_iter=1, history_size=history, tolerance_grad=-1, tolerance_change=-1
        )

    opt = fresh()
    last: tuple[float, dict[str, float]] = (math.nan, {})
    norm: Optional[float] = None

    def lbfgs_closure() -> torch.Tensor:
        nonlocal last, norm
        opt.zero_grad(set_to_none=True)
        loss, terms = closure()
        last = (float(loss.detach()), terms)
        # L-BFGS sees the loss divided by its first value. The minimiser is the same, but in
        # float32 the raw Gram losses (~1e9 on caffe-scale features) make its first,
        # gradient-normalised step too small to measure curvature, and the next step then
        # explodes to NaN (seen at 256 px). Adam is scale-free and needs no such care.
        if norm is None:
            norm = max(last[0], 1e-12)
        loss = loss / norm
        loss.backward()
        return loss

    # The last accepted iterate and its (loss, terms). L-BFGS runs without a line search here
    # (one closure per step), so one bad curvature pair can send it far off: seen in bf16, where
    # the gradients carry rounding noise, on 2 of 12 pairs at 512 px (SSIM 0.10 at step 5, the
    # picture wrecked, benchmarks/RESULTS.md "Precision"). A step that raises the loss more than
    # BLOWUP-fold is undone: back to the iterate before it, history dropped, so L-BFGS restarts
    # with its small first step. Costs one image copy; changes nothing in a run that never jumps.
    kept: Optional[tuple[torch.Tensor, tuple[float, dict[str, float]]]] = None
    for _ in range(n):
        start = x.detach().clone()
        opt.step(lbfgs_closure)  # the loss at ``start``, then x moves
        if kept is not None and last[0] > BLOWUP * kept[1][0]:
            with torch.no_grad():
                x.copy_(kept[0])
            opt = fresh()
            yield kept[1]
            continue
        kept = (start, last)
        if config.clamp:
            with torch.no_grad():
                x.clamp_(0, 1)
            _clamped_step(opt, x, start)
        yield last


def _clamped_step(opt: torch.optim.LBFGS, x: torch.Tensor, start: torch.Tensor) -> None:
    """Tell L-BFGS the step it took after the clamp moved its iterate.

    L-BFGS learns the curvature from pairs (s, y): the step and the change of the gradient along
    it, which must satisfy the secant condition y = B s (Nocedal & Wright, ch. 7). torch's LBFGS
    takes s = t d from the direction it proposed, but the next gradient is taken where the clamp
    put x, so wherever pixels hit 0 or 1 the pair mixed one step with another's gradient change.
    With the true step (the clamped x minus the last) the default's picture settles sooner: on
    coffee x the scream within 0.02 of its step 300 from step 170, not 240, at no cost per step
    (benchmarks/RESULTS.md, "A faster step and the clamp told to L-BFGS").
    """
    state = opt.state[x]
    d, t = state.get("d"), state.get("t")
    if d is not None and t:
        with torch.no_grad():
            torch.sub(x.detach().flatten(), start.flatten(), out=d).div_(t)
