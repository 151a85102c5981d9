"""Block mode: the whole image's objective and gradient, with the memory of one block at a time.

Galerne, Raad, Lezama & Morel, "Scaling Painting Style Transfer" (2022, arXiv 2212.13459): the
style statistics are sums over pixels (the Gram matrix; for the W2 loss the mean and the second
moment E[f f^T], whose covariance follows from them), so they add up over blocks. Each step:

1. without a graph, every block is run and the statistics' sums over its core are added up;
2. the style loss of those global statistics, and its gradient with respect to them (C x C per
   layer, tiny);
3. every block is run again with a graph, that gradient is back-propagated through the partial
   sums of its features, with its content term, and the pixel gradient of its core is kept.

The assembled gradient is the whole image's (tests/test_blocks.py checks it at a size where both
fit), so L-BFGS and Adam run unchanged and there is no seam: no block is optimised on its own.
The blocks, their overlap and their alignment come from the run plan (plan.tiles,
plan.block_geometry): a core's features are exact when the block is computed with a margin of
one receptive field and starts on the deepest layer's pixel grid. The sliced loss sorts all
positions at once and has no such sums; the plan refuses it in block mode.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import torch

from .losses import StyleLossKind, _Sums, statistic_distance, wide, wide_dtype
from .plan import Tile, layer_stride

Features = Callable[[torch.Tensor, Sequence[str]], dict[str, torch.Tensor]]


def _region(t: torch.Tensor, box: tuple[int, int, int, int]) -> torch.Tensor:
    x0, y0, x1, y1 = box
    return t[..., y0:y1, x0:x1]


def _core(features: torch.Tensor, tile: Tile, layer: str) -> torch.Tensor:
    """The feature positions of ``tile``'s core in a map computed on its padded region."""
    s = layer_stride(layer)
    px, py = tile.pad[0], tile.pad[1]
    x0, y0, x1, y1 = tile.core
    return features[..., (y0 - py) // s : (y1 - py) // s, (x0 - px) // s : (x1 - px) // s]


def _core_box(tile: Tile, layer: str) -> tuple[int, int, int, int]:
    """The core in the whole image's feature coordinates (edges on the grid, so exact)."""
    s = layer_stride(layer)
    x0, y0, x1, y1 = tile.core
    return x0 // s, y0 // s, x1 // s, y1 // s


def _pad_box(tile: Tile, layer: str) -> tuple[int, int, int, int]:
    """The padded region in the whole image's feature coordinates (it starts on the grid; it ends
    on it or at the image's edge, where both floor alike)."""
    s = layer_stride(layer)
    x0, y0, x1, y1 = tile.pad
    return x0 // s, y0 // s, x1 // s, y1 // s


def _sums(f: torch.Tensor, kind: StyleLossKind) -> tuple[torch.Tensor, ...]:
    """The statistic's sums over the positions of (B, C, h, w) features: (sum f f^T,) for the Gram,
    (sum f, sum f f^T) for the W2 moments."""
    return _Sums.apply(f, kind != "gram")


def _per_sum(kind: StyleLossKind, normalize: bool, channels: int, n: int) -> float:
    """d statistic / d sums: the statistic is sums / n (W2 moments, Gram / (C n)), or the raw Gram."""
    if kind == "gram":
        return 1.0 / (channels * n) if normalize else 1.0
    return 1.0 / n


def _from_sums(sums: tuple[torch.Tensor, ...], kind: StyleLossKind, normalize: bool, channels: int, n: int):
    k = _per_sum(kind, normalize, channels, n)
    return sums[0] * k if kind == "gram" else (sums[0] * k, sums[1] * k)


def _sum_over(features: Features, img: torch.Tensor, layers: Sequence[str], tiles: Sequence[Tile], kind):
    """({layer: sums}, {layer: positions}) over the cores of ``tiles``, without a graph."""
    acc: dict[str, list[torch.Tensor]] = {}
    count = dict.fromkeys(layers, 0)
    with torch.no_grad():
        for t in tiles:
            feats = features(_region(img, t.pad), layers)
            for k in layers:
                f = _core(feats[k], t, k)
                count[k] += f.shape[-1] * f.shape[-2]
                part = _sums(f, kind)
                acc[k] = [a + p for a, p in zip(acc[k], part)] if k in acc else list(part)
            del feats
    return {k: tuple(v) for k, v in acc.items()}, count


def statistics(
    features: Features,
    img: torch.Tensor,
    layers: Sequence[str],
    tiles: Sequence[Tile],
    kind: StyleLossKind,
    *,
    normalize: bool = True,
) -> dict:
    """The style statistic of each layer of a whole image (as losses.style_statistic gives it),
    added up over the cores of ``tiles``, without a graph (a painting's, at a print's size)."""
    sums, count = _sum_over(features, img, layers, tiles, kind)
    return {k: _from_sums(sums[k], kind, normalize, sums[k][-1].shape[-1], count[k]) for k in layers}


def stitch(features: Features, img: torch.Tensor, layers: Sequence[str], tiles: Sequence[Tile]) -> dict:
    """The whole image's activations of ``layers`` (content targets), assembled from block cores."""
    h, w = img.shape[-2:]
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for t in tiles:
            feats = features(_region(img, t.pad), layers)
            for k in layers:
                f = _core(feats[k], t, k)
                if k not in out:
                    s = layer_stride(k)
                    out[k] = f.new_empty((*f.shape[:2], h // s, w // s), dtype=wide_dtype(f))  # fp32, as whole
                _region(out[k], _core_box(t, k)).copy_(f)
            del feats
    return out


class BlockObjective:
    """The content and style terms of a whole image and their gradient, computed block by block.

    The same objective as stylize's whole-image closure: the sum of ``content_weights`` * content
    loss over ``content_layers``; ``style_weight`` (times the loss's scale) * sum of ``layer_weights``
    * style distance over ``style_layers``.
    """

    def __init__(
        self,
        features: Features,
        tiles: Sequence[Tile],
        *,
        content_layers: Sequence[str],
        content_targets: dict[str, torch.Tensor],
        content_weights: Sequence[float],
        content_reduction: Literal["sum", "mean"],
        style_layers: Sequence[str],
        style_targets: dict,
        layer_weights: Sequence[float],
        style_weight: float,
        kind: StyleLossKind,
        normalize: bool,
    ) -> None:
        if kind == "sliced":
            raise ValueError("the sliced style loss cannot run in blocks (it sorts every position at once)")
        self.features, self.tiles = features, tuple(tiles)
        self.cl, self.c_targets, self.cw, self.reduction = (
            tuple(content_layers),
            content_targets,
            tuple(content_weights),
            content_reduction,
        )
        self.sl, self.s_targets, self.lw, self.sw = (
            tuple(style_layers),
            style_targets,
            tuple(layer_weights),
            style_weight,
        )
        self.kind, self.normalize = kind, normalize
        self.layers = tuple(dict.fromkeys(self.cl + self.sl))

    def __call__(self, x: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
        """({"content": value, "style": value}, d(content + style)/dx) at ``x`` (1, 3, H, W)."""
        x = x.detach()
        terms: dict[str, float] = {}
        dsums: dict[str, list[torch.Tensor]] = {}
        if self.sl:
            # 1-2: global statistics as leaves, the style loss and its gradient with respect to them.
            sums, count = _sum_over(self.features, x, self.sl, self.tiles, self.kind)
            leaves = {k: [s.requires_grad_(True) for s in sums[k]] for k in self.sl}
            loss = torch.zeros(())
            for k, w in zip(self.sl, self.lw):
                stat = self._statistic(k, leaves[k], count[k])
                loss = loss + self.sw * w * statistic_distance(
                    stat, self.s_targets[k], self.kind, normalize=self.normalize
                )
            flat = [s for k in self.sl for s in leaves[k]]
            grads = iter(torch.autograd.grad(loss, flat))
            dsums = {k: [next(grads) for _ in leaves[k]] for k in self.sl}
            terms["style"] = float(loss.detach())
        # 3: per block, the chain rule through its own sums and its content term; keep the core.
        grad = torch.zeros_like(x)
        content = 0.0
        for t in self.tiles:
            xb = _region(x, t.pad).detach().requires_grad_(True)
            feats = self.features(xb, self.layers)
            # Every feature of the padded block takes part, not only the core's: a core pixel's
            # gradient also comes through features in the margin. Those next to the block's edge
            # are wrong (they see padding), but reach no core pixel: the margin is a whole
            # receptive field. The terms' values count the core's features only.
            obj = xb.new_zeros(())
            for k in self.sl:
                obj = obj + sum((p * d).sum() for p, d in zip(_sums(feats[k], self.kind), dsums[k]))
            for k, cw in zip(self.cl, self.cw):
                diff = (wide(feats[k]) - _region(self.c_targets[k], _pad_box(t, k))).pow(2)
                per = cw * (0.5 if self.reduction == "sum" else 1.0 / self.c_targets[k].numel())
                content += per * float(_core(diff, t, k).detach().sum())
                obj = obj + per * diff.sum()
            (g,) = torch.autograd.grad(obj, xb)
            del feats, obj
            x0, y0, x1, y1 = t.core
            px, py = t.pad[0], t.pad[1]
            _region(grad, t.core).copy_(g[..., y0 - py : y1 - py, x0 - px : x1 - px])
        if self.cl:
            terms = {"content": content, **terms}
        return terms, grad

    def _statistic(self, layer: str, sums: list[torch.Tensor], n: int):
        return _from_sums(tuple(sums), self.kind, self.normalize, sums[-1].shape[-1], n)


class _Carry(torch.autograd.Function):
    """A zero whose gradient with respect to x is a given tensor."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(grad)
        return x.new_zeros(())

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (grad,) = ctx.saved_tensors
        return grad.mul_(g), None  # in place: at 8192 px another image-sized copy is 0.5 GB


def carry(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """0, with gradient ``grad`` with respect to ``x``: adds a block-assembled gradient to a loss
    whose other terms (TV, any pixelwise term) keep their own graph, so the optimisers need no change."""
    return _Carry.apply(x, grad)


def out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation failure (a GPU's allocator, or the CPU's when RAM runs out)."""
    if isinstance(e, (MemoryError, torch.OutOfMemoryError)):
        return True
    text = str(e).lower() if isinstance(e, RuntimeError) else ""
    return any(s in text for s in ("out of memory", "can't allocate memory", "not enough memory"))
