"""The losses of Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (2015).

Small pure functions on feature tensors of shape (B, C, H, W). In the paper's notation a
layer l has N_l = C feature maps of size M_l = H*W.
"""

from __future__ import annotations

from typing import Literal, Sequence

import torch


def gram_matrix(features: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Gram matrix (B, C, H, W) -> (B, C, C), by default normalised: G / (N M).

    The paper's G^l_ij = sum_k F_ik F_jk, divided by N_l * M_l. Folding Gatys' constant
    1/(4 N^2 M^2) into the Gram this way makes its entries independent of the image size,
    so one style weight serves every scale of a coarse-to-fine run, and keeps fp16 Grams
    from overflowing on a GPU. ``normalize=False`` gives the raw sum, which grows with the
    pixel count (the form the classic recipe's weights were set for; see config.CLASSIC).
    """
    b, c, h, w = features.shape
    # (B, M, C): a free view of the channels_last activations the VGG produces.
    f = features.permute(0, 2, 3, 1).reshape(b, h * w, c)
    g = _SymGram.apply(f)
    return g / (c * h * w) if normalize else g


class _SymGram(torch.autograd.Function):
    """F^T F for F of shape (B, M, C).

    The result is symmetric, so the gradient is (dG + dG^T) F: one matrix product, where
    autograd's bmm backward would do two (one per operand) and then add them. Together with
    the (M, C) layout this makes the Gram terms about 3x cheaper (benchmarks/RESULTS.md).
    """

    @staticmethod
    def forward(ctx, f: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(f)
        return torch.matmul(f.transpose(1, 2), f)  # (B, C, C)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (f,) = ctx.saved_tensors
        return torch.matmul(f, grad + grad.transpose(1, 2))


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
    diff = (features - target).pow(2)
    return 0.5 * diff.sum() if reduction == "sum" else diff.mean()


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
