"""The losses of Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015).

Small pure functions on feature tensors of shape (B, C, H, W). In the paper's notation a
layer l has N_l = C feature maps of size M_l = H*W.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Sequence

import torch
import torch.nn.functional as F


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Gram matrix (B, C, H, W) -> (B, C, C), by default normalised: G / (N M).

    The paper's G^l_ij = sum_k F_ik F_jk, divided by N_l * M_l. Folding Gatys' constant
    1/(4 N^2 M^2) into the Gram this way makes its entries independent of the image size,
    so one style weight serves every scale of a coarse-to-fine run, and keeps fp16 Grams
    from overflowing on a GPU. ``normalize=False`` gives the raw sum, which grows with the
    pixel count (the form the classic recipe's weights were set for; see config.CLASSIC).
    Computed in fp32 (at least) from features of any precision (see _Sums).
    """
    b, c, h, w = features.shape
    (g,) = _Sums.apply(features, False)
    return g / (c * h * w) if normalize else g


def positions(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) features as (B, M, C), M = H*W positions: a free view of the channels_last
    activations the VGG produces."""
    b, c, h, w = features.shape
    return features.permute(0, 2, 3, 1).reshape(b, h * w, c)


def wide_dtype(t: torch.Tensor) -> torch.dtype:
    """At least fp32: what every statistic and loss computes in (precision.py)."""
    return torch.promote_types(t.dtype, torch.float32)


def wide(t: torch.Tensor) -> torch.Tensor:
    """``t`` in ``wide_dtype`` (itself where it already is)."""
    return t.to(wide_dtype(t))


class _Sums(torch.autograd.Function):
    """The sums over the positions of features (B, C, H, W): F^T F, and with ``with_sum`` also
    sum_m F, for F their (B, M, C) view, in fp32 (at least) whatever the features' precision:
    every statistic here is made of these.

    The backward is one matrix product, dF = F (dS + dS^T) + 1 ds^T: F^T F is symmetric, so
    one product where autograd's bmm backward would do two and add them (with the (M, C)
    layout, about 3x cheaper: benchmarks/RESULTS.md), and the sum's gradient rides along as its
    bias. It runs in the features' own precision where that has fp32's range (bf16: on the
    processor's bf16 units, 2.5-10x faster than in fp32 at 512 px), so it leaves as the gradient
    the convolutions' backward takes, with no fp32 copy of F's size made, divided, added and cast
    down. fp16 (a GPU's, whose range the small gradients of a statistic could leave) computes
    in fp32 and is cast at the end, as autocast would. The gradient is written into a fresh
    channels_last tensor, not handed back as a view of a (B, M, C) one: autograd adds a layer's
    two gradients (this one and the next convolution's) in place only into a tensor that is no
    view, and out of place it took 17 ms at relu1_1 of a 512 px picture.
    """

    @staticmethod
    def forward(ctx, features: torch.Tensor, with_sum: bool) -> tuple[torch.Tensor, ...]:  # type: ignore[override]
        f = positions(features)
        ctx.save_for_backward(f)
        ctx.with_sum, ctx.shape = with_sum, features.shape
        w = wide(f)
        second = torch.matmul(w.transpose(1, 2), w)  # (B, C, C)
        return (w.sum(1), second) if with_sum else (second,)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor):  # type: ignore[override]
        (f,) = ctx.saved_tensors
        g_second = grads[-1]
        dtype = f.dtype if f.dtype != torch.float16 else torch.float32
        sym = (g_second + g_second.transpose(1, 2)).to(dtype)
        out = torch.empty(ctx.shape, dtype=dtype, device=f.device, memory_format=torch.channels_last)
        rows = positions(out)  # a view of ``out``: the product is written straight into it
        fd = f.to(dtype)
        if ctx.with_sum:
            torch.baddbmm(grads[0].unsqueeze(1).to(dtype), fd, sym, out=rows)
        else:
            torch.bmm(fd, sym, out=rows)
        return out.to(f.dtype), None


def style_loss(gram: torch.Tensor, target: torch.Tensor, reduction: Literal["gatys", "mean"] = "gatys") -> torch.Tensor:
    """Style loss of one layer from two Grams.

    "gatys" is the paper's E_l = 1/(4 N^2 M^2) * sum((G - A)^2), given normalised Grams (see
    gram_matrix); "mean" is mean((G - A)^2), which the classic recipe applies to raw Grams.
    """
    diff = (gram - target).pow(2)
    return 0.25 * diff.sum() if reduction == "gatys" else diff.mean()


def content_loss(
    features: torch.Tensor, target: torch.Tensor, reduction: Literal["sum", "mean"] = "sum"
) -> torch.Tensor:
    """Content loss: "sum" is the paper's 1/2 * sum((F - P)^2); "mean" is mean((F - P)^2).

    The sum grows with the number of pixels, so its weight depends on the image size; the
    mean does not, which is what a multi-scale run needs.
    """
    # On the (B, M, C) view: the same elements, but mse_loss's kernels take a slow path on
    # channels_last tensors (forward and backward 11.9 ms against 1.8 ms at relu4_2 of a 512 px
    # image, measured on the Xeon with AMX).
    f, t = wide(positions(features)), wide(positions(target))
    return 0.5 * F.mse_loss(f, t, reduction="sum") if reduction == "sum" else F.mse_loss(f, t)


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of neighbouring pixels (Mahendran & Vedaldi 2015)."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    dw = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return dh + dw


def blend_grams(grams: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """One style target from several style images: the weighted mean of their Grams."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("style blend weights must not all be zero")
    return sum(g * (w / total) for g, w in zip(grams, weights))  # type: ignore[return-value]


# --- distribution-matching style losses ------------------------------------------------------
#
# The Gram matrix is an uncentred second moment: it mixes the features' means with their
# covariance and says nothing of the rest of their distribution, which is what shows as the
# Gram loss's washed-out colours and contrast oscillations (Risser et al. 2017; Heitz et al.
# 2021). Two losses match more of the distribution at about the Gram's cost:
#  - "w2": the Wasserstein-2 distance between Gaussian fits (mean and covariance) of the
#    features, as in crowsonkb/style-transfer-pytorch (after Kolkin et al. 2019's moment
#    matching and Gatys' own remark that the Gram is a second moment);
#  - "sliced": the sliced Wasserstein distance of Heitz et al., "A Sliced Wasserstein Loss for
#    Neural Texture Synthesis" (CVPR 2021): the features projected on fixed directions, each
#    projection's sorted values matched to the painting's (1-D optimal transport).
# Both are divided by the number of channels so that one weight serves every layer width.


def feature_moments(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean (B, C), second moment E[f f^T] (B, C, C)) over the positions of (B, C, H, W) features.

    Raw (uncentred) moments, so the moments of a mixture of several paintings are the
    weighted means of theirs (see blend_moments). fp32 (at least) from features of any precision.
    """
    b, c, h, w = features.shape
    total, second = _Sums.apply(features, True)
    return total / (h * w), second / (h * w)


class W2Target:
    """A painting's Gaussian fit at one layer: mean, covariance and the covariance's square root."""

    def __init__(self, mean: torch.Tensor, second: torch.Tensor) -> None:
        self.mean = mean  # (B, C)
        self.cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)  # (B, C, C)
        self.cov_sqrt = _psd_sqrt(self.cov)
        self.trace = self.cov.diagonal(dim1=-2, dim2=-1).sum(-1)  # (B,)


def blend_moments(moments: Sequence[tuple[torch.Tensor, torch.Tensor]], weights: Sequence[float]) -> W2Target:
    """The W2 target of several paintings: the mixture's mean and second moment (both linear)."""
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("style blend weights must not all be zero")
    mean = sum(m * (w / total) for (m, _), w in zip(moments, weights))
    second = sum(s * (w / total) for (_, s), w in zip(moments, weights))
    return W2Target(mean, second)  # type: ignore[arg-type]


def w2_loss(features: torch.Tensor, target: W2Target) -> torch.Tensor:
    """Squared Wasserstein-2 distance between Gaussian fits, divided by the channel count C.

    W2^2 = |mu - mu_s|^2 + tr(S) + tr(S_s) - 2 tr((S_s^1/2 S S_s^1/2)^1/2)  (Dowson & Landau 1982).
    """
    return w2_moments_loss(*feature_moments(features), target)


def w2_moments_loss(mean: torch.Tensor, second: torch.Tensor, target: W2Target) -> torch.Tensor:
    """w2_loss from the moments (mean (B, C), E[f f^T] (B, C, C)): what block mode sums over blocks."""
    cov = second - mean.unsqueeze(-1) * mean.unsqueeze(-2)
    cross = _TraceSqrt.apply(target.cov_sqrt @ cov @ target.cov_sqrt)  # (B,)
    w2 = (mean - target.mean).pow(2).sum(-1) + cov.diagonal(dim1=-2, dim2=-1).sum(-1) + target.trace - 2 * cross
    return w2.sum() / mean.shape[-1]


def _psd_sqrt(m: torch.Tensor) -> torch.Tensor:
    """Square root of symmetric positive semi-definite matrices (no gradient needed)."""
    vals, vecs = torch.linalg.eigh(m.detach().double())  # float64: float32 eigh is slow and loses the small eigenvalues
    return _narrow((vecs * vals.clamp_min(0).sqrt().unsqueeze(-2)) @ vecs.transpose(-1, -2), m.dtype)


class _TraceSqrt(torch.autograd.Function):
    """tr(A^1/2) of symmetric PSD (B, C, C) matrices, with its gradient A^-1/2 / 2.

    By eigendecomposition rather than Newton-Schulz iterations: exact (Newton-Schulz leaves
    the small eigenvalues unconverged, so the loss would not be zero at the target) and one
    float64 eigh of a 512 x 512 matrix is ~20 ms on a CPU. Eigenvalues under 1e-7 of the
    largest get a clamped gradient: those directions carry no variance to match.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        vals, vecs = torch.linalg.eigh(a.detach().double())
        vals = vals.clamp_min(0)
        ctx.save_for_backward(vals, vecs)
        ctx.dtype = a.dtype
        return vals.sqrt().sum(-1).to(a.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        vals, vecs = ctx.saved_tensors
        floor = vals.amax(-1, keepdim=True).clamp_min(1e-30) * 1e-7
        inv_sqrt = 0.5 / vals.clamp_min(floor).sqrt()  # d sqrt(l) / dl
        g = (vecs * inv_sqrt.unsqueeze(-2)) @ vecs.transpose(-1, -2)
        # Narrowed at the run's scale: L-BFGS sees the loss divided by its first value, so this
        # gradient's largest entry is 1e-13 to 1e-7, and what lands under 1e-19 is at most 1.2e-7
        # of its norm (relu4_1; 1e-12 or less at relu1_1-relu3_1), fp32's rounding. Narrowed before
        # that scale, its products with it still fell to denormals (a 160 px step 0.108 s, not 0.084).
        return _narrow(g * grad.double().view(-1, 1, 1), ctx.dtype)


def _narrow(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """float64 ``t`` cast to ``dtype``, its entries under the square root of ``dtype``'s smallest
    normal number (1e-19 in fp32) set to zero, so that no entry and no product of two entries is a
    denormal (a sum of products can still cancel into one, rarely: 54 of 262144 in a product of two
    such matrices, against 4518 before).

    These matrices come from eigenvectors, and a covariance read from fewer positions than
    channels (relu5_1 of a picture under about 360 x 360 px, relu4_1 under 180 x 180) has
    eigenvalues at zero: hundreds to thousands of their entries were fp32 denormals, which x86
    CPUs multiply in microcode. On the studio's calibration pictures at 160 px the 512 x 512
    products of ``w2_moments_loss`` took 6.0 ms against 1.2 ms, the whole step 0.134 s against
    0.084 s, and the cost line fitted to those steps (``painterly.calibrate``: the studio's and
    --plan's estimates) put twice the overhead into every step and a quarter too little into each
    pixel (benchmarks/RESULTS.md, "Denormals"). Entries under 1e-19 mean nothing beside the
    others. (torch.set_flush_denormal would reach only the calling thread, not the threads that
    do the products.)
    """
    return t.masked_fill(t.abs() < torch.finfo(dtype).tiny ** 0.5, 0).to(dtype)


def sliced_projections(channels: int, seed: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(C, C) fixed random unit directions: drawn once per scale from ``seed``, so that L-BFGS
    sees one deterministic objective (Heitz et al. draw new ones every step, for Adam)."""
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn(channels, channels, generator=gen)
    return (p / p.norm(dim=0, keepdim=True)).to(device)


def sliced_sorted(features: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """The features projected on each direction, sorted over positions: (B, K, M)."""
    return torch.sort((wide(positions(features)) @ projections).transpose(1, 2), dim=-1).values


def _resample_sorted(sorted_values: torch.Tensor, n: int) -> torch.Tensor:
    """A sorted sample (B, K, N) as n quantiles (B, K, n): the inverse CDF, linearly interpolated."""
    if sorted_values.shape[-1] == n:
        return sorted_values
    return F.interpolate(sorted_values, size=n, mode="linear", align_corners=False)


def blend_sliced(targets: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """One sorted target from several paintings': a sample of their mixture.

    Each painting contributes quantiles in proportion to its weight; the union, sorted, is a
    sample of the mixture distribution along every direction.
    """
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("style blend weights must not all be zero")
    kept = [(t, w) for t, w in zip(targets, weights) if w > 0]
    if len(kept) == 1:
        return kept[0][0]
    n = sum(t.shape[-1] for t in targets)
    parts = [_resample_sorted(t, max(1, round(n * w / total))) for t, w in kept]
    return torch.sort(torch.cat(parts, dim=-1), dim=-1).values


def sliced_loss(features: torch.Tensor, target: torch.Tensor, projections: torch.Tensor) -> torch.Tensor:
    """Sliced Wasserstein-2 loss (Heitz et al. 2021), divided by the channel count as w2_loss is.

    mean over directions and positions of (sorted projections - the painting's quantiles)^2,
    times K / C, i.e. the sum over directions of the 1-D W2^2 divided by C.
    """
    mine = sliced_sorted(features, projections)
    theirs = _resample_sorted(target, mine.shape[-1])
    return (mine - theirs).pow(2).mean(-1).sum() / features.shape[1]


# --- one interface over the three style losses (what stylize calls) ---------------------------

# Each loss times its factor gives about the same style/content balance for the same
# style_weight (calibrated on the first step from the photo, see benchmarks/RESULTS.md), so
# that the presets' and the studio's strength levels keep their meaning with any loss.
STYLE_LOSS_SCALE: dict[str, float] = {"gram": 1.0, "w2": 3.5e4, "sliced": 1.7e5}


def default_layer_weights(layers: Sequence[str], kind: StyleLossKind) -> tuple[float, ...]:
    """Style layer weights when none are given: equal for the Gram loss (Gatys et al.); for the
    distribution losses 4^-block, normalised (relu1_1 : relu2_1 : ... = 256 : 64 : 16 : 4 : 1, as
    crowsonkb/style-transfer-pytorch weights its W2 loss). A W2 or sliced term grows about
    tenfold per VGG block (measured on the twelve pairs: relu4_1's is 10-300x relu1_1's), so with
    equal weights the deep layers decide alone and the painting's colours and fine strokes,
    which the shallow layers carry, never arrive (benchmarks/RESULTS.md, "Choosing the loss")."""
    if kind == "gram" or not layers:
        return (1.0 / len(layers),) * len(layers) if layers else ()
    raw = [4.0 ** -int(re.search(r"\d", name).group()) for name in layers]  # type: ignore[union-attr]
    return tuple(w / sum(raw) for w in raw)


StyleLossKind = Literal["gram", "w2", "sliced"]


def style_statistic(
    features: torch.Tensor, kind: StyleLossKind, *, normalize: bool = True, projections: torch.Tensor | None = None
):
    """What a painting contributes at one layer: its Gram, its moments, or its sorted projections."""
    if kind == "gram":
        return gram_matrix(features, normalize)
    if kind == "w2":
        return feature_moments(features)
    assert projections is not None
    return sliced_sorted(features, projections)


def blend_statistics(stats: Sequence, weights: Sequence[float], kind: StyleLossKind):
    """One target from the statistics of several paintings (of one painting, too)."""
    if kind == "gram":
        return blend_grams(stats, weights)
    if kind == "w2":
        return blend_moments(stats, weights)
    return blend_sliced(stats, weights)


def style_distance(
    features: torch.Tensor,
    target,
    kind: StyleLossKind,
    *,
    normalize: bool = True,
    projections: torch.Tensor | None = None,
) -> torch.Tensor:
    """The style loss of one layer under ``kind`` (Gram: Gatys' E_l, or mean((G-A)^2) on raw Grams)."""
    if kind == "sliced":
        assert projections is not None
        return sliced_loss(features, target, projections)
    return statistic_distance(style_statistic(features, kind, normalize=normalize), target, kind, normalize=normalize)


def statistic_distance(statistic, target, kind: StyleLossKind, *, normalize: bool = True) -> torch.Tensor:
    """style_distance from the image's statistic (a Gram, or the moments) rather than its features:
    the form block mode needs, since those statistics are sums over pixels. Not for 'sliced'."""
    if kind == "gram":
        return style_loss(statistic, target, "gatys" if normalize else "mean")
    if kind == "w2":
        mean, second = statistic
        return w2_moments_loss(mean, second, target)
    raise ValueError("the sliced loss has no statistic that adds up over pixels")


def temporal_loss(image: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Ruder et al. (2016), eq. 3: (1/D) * sum(c * (x - w)^2) over the D = C*H*W pixel values.

    ``image`` and ``target`` (B, 3, H, W); ``weight`` the per-pixel c in [0, 1], (B, 1, H, W).
    """
    return (weight * (image - target) ** 2).sum() / image[:1].numel()


@dataclass(frozen=True)
class TemporalTarget:
    """What a video frame keeps to: the previous stylised frame warped along the flow, and where.

    ``image`` (1, 3, H, W) in [0, 1]; ``weight`` (1, 1, H, W), Ruder's c: 1 where the flow is
    reliable, 0 at occlusions and motion boundaries; ``strength`` the temporal loss weight.
    """

    image: torch.Tensor
    weight: torch.Tensor
    strength: float

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """The weighted temporal loss of ``x`` (at any scale: the target follows x's size)."""
        image, weight = self.image.to(x.device), self.weight.to(x.device)
        if image.shape[-2:] != x.shape[-2:]:
            image = F.interpolate(image, size=x.shape[-2:], mode="bilinear", align_corners=False)
            weight = F.interpolate(weight, size=x.shape[-2:], mode="area")
        return self.strength * temporal_loss(x, image, weight)
