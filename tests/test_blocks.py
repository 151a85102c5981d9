"""Block mode (blocks.py): the block-assembled gradient is the whole image's, and so is the run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import _gradient
from painterly import blocks
from painterly import images as im
from painterly.config import VGG_LAYERS, StyleConfig
from painterly.losses import STYLE_LOSS_SCALE, blend_statistics, content_loss, style_distance, style_statistic
from painterly.plan import block_geometry, tiles
from painterly.stylize import Progress, pick_device, stylize
from painterly.vgg import get_vgg

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _features(last: str):
    net = get_vgg(last)
    return lambda img, names: {k: v.float() for k, v in net(img, names).items()}


def _whole(x, features, cl, c_targets, sl, s_targets, lw, kind, cw=1.0, sw=1.0, reduction="mean"):
    """The objective as stylize's whole-image closure computes it, and its gradient."""
    x = x.detach().requires_grad_(True)
    feats = features(x, tuple(dict.fromkeys(cl + sl)))
    content = cw * sum(content_loss(feats[k], c_targets[k], reduction) for k in cl)
    style = sw * sum(w * style_distance(feats[k], s_targets[k], kind) for k, w in zip(sl, lw))
    (grad,) = torch.autograd.grad(content + style, x)
    return float(content.detach()), float(style.detach()), grad


@pytest.mark.parametrize(
    ("kind", "cl", "sl", "size", "block"),
    [
        ("w2", ("relu4_2",), ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"), (272, 176), 64),  # the default
        ("gram", ("relu2_2",), ("relu1_1", "relu3_1"), (160, 96), 32),
    ],
)
def test_block_gradient_is_the_whole_image_gradient(kind, cl, sl, size, block):
    features = _features(max(cl + sl, key=VGG_LAYERS.index))
    x = im.to_tensor(_gradient(*size, seed=3))
    content = im.to_tensor(_gradient(*size, seed=4))
    painting = im.to_tensor(_gradient(80, 64, seed=5))
    halo, align = block_geometry(max(cl + sl, key=VGG_LAYERS.index))
    cut = tiles(*size, block, halo)
    assert any(t.pad != (0, 0, *size) for t in cut), "some block must be cut out of the image, or nothing is tested"
    with torch.no_grad():
        c_whole = features(content, cl)
        s_feats = features(painting, sl)
        s_targets = {k: blend_statistics([style_statistic(s_feats[k], kind)], [1.0], kind) for k in sl}
    c_blocks = blocks.stitch(features, content, cl, cut)
    for k in cl:  # the photo's activations assembled from blocks are the whole image's
        torch.testing.assert_close(c_blocks[k], c_whole[k], rtol=1e-4, atol=1e-3)
    lw = (0.2,) * len(sl)
    sw = STYLE_LOSS_SCALE[kind] * 1e-2
    c0, s0, g_whole = _whole(x, features, cl, c_whole, sl, s_targets, lw, kind, sw=sw)
    objective = blocks.BlockObjective(
        features, cut, content_layers=cl, content_targets=c_whole, content_weights=(1.0,) * len(cl),
        content_reduction="mean", style_layers=sl, style_targets=s_targets, layer_weights=lw, style_weight=sw,
        kind=kind, normalize=True,
    )  # fmt: skip
    terms, g_blocks = objective(x)
    assert terms["content"] == pytest.approx(c0, rel=1e-4)
    # The W2 value is tr(S) + tr(S_s) - 2 tr((..)^1/2) of traces ~1e5 in float32: the sums' rounding
    # order moves it by up to ~10 % when it is small (measured: 0.836 and 0.875 for a float64 0.946);
    # its gradient does not go through that cancellation and is held tightly below.
    assert terms["style"] == pytest.approx(s0, rel=1e-4 if kind == "gram" else 0.15)
    assert g_whole.abs().max() > 0
    scale = float(g_whole.abs().max())
    torch.testing.assert_close(g_blocks, g_whole, rtol=0, atol=1e-4 * scale)
    # the same gradient at the block edges as elsewhere: no seam in the gradient itself
    edges = [t.core[0] for t in cut if t.core[0]]
    assert edges and float((g_blocks - g_whole)[..., edges].abs().max()) < 1e-4 * scale


def test_painting_statistics_add_up_over_blocks():
    features = _features("relu3_1")
    img = im.to_tensor(_gradient(150, 90, seed=2))  # not a multiple of the block or the stride
    sl = ("relu1_1", "relu2_1", "relu3_1")
    with torch.no_grad():
        feats = features(img, sl)
    cut = tiles(150, 90, 48, block_geometry("relu3_1")[0])
    for kind in ("w2", "gram"):
        summed = blocks.statistics(features, img, sl, cut, kind)
        for k in sl:
            whole = style_statistic(feats[k], kind)
            for a, b in zip(summed[k] if kind == "w2" else [summed[k]], whole if kind == "w2" else [whole]):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_carry_adds_a_gradient_and_nothing_else():
    x = torch.rand(1, 3, 4, 5, requires_grad=True)
    g = torch.rand(1, 3, 4, 5)
    total = (x**2).sum() + blocks.carry(x, g)
    assert float(total.detach()) == pytest.approx(float((x**2).sum().detach()))
    total.backward()
    torch.testing.assert_close(x.grad, 2 * x.detach() + g)


# (precision, loss's relative difference, mean and 99.5th percentile pixel difference in 8-bit levels):
# bf16 convolutions round differently on a block than on the whole image (measured: 2.5e-4, 0.67, 7;
# fp32: 6.5e-5, 0.16, 2).
@pytest.mark.parametrize(("precision", "rel", "mean", "p995"), [("fp32", 1e-4, 0.5, 2), ("bf16", 2e-3, 1.5, 12)])
def test_a_run_in_blocks_is_the_run_on_the_whole_image(style_img, precision, rel, mean, p995):
    # relu4_1 as the deepest layer keeps the overlap (80 px) small enough for blocks at 176 px. Adam,
    # because L-BFGS without a line search amplifies float32 rounding: the same two runs agree for
    # two L-BFGS steps, then part (its third step raised the loss 1.41x in one run, 1.38x in the other).
    photo = _gradient(176, 112, seed=7)
    cfg = StyleConfig(size=176, steps=6, scales=1, init="content", precision=precision, max_memory="64GB",
                      optimizer="adam", lr=0.03, content_layers=("relu3_2",),
                      style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1"), tv_weight=0.5)  # fmt: skip
    seen_whole: list[Progress] = []
    seen_blocks: list[Progress] = []
    whole = stylize(photo, style_img, cfg, on_progress=seen_whole.append)
    in_blocks = stylize(photo, style_img, cfg.replace(block_size=48), on_progress=seen_blocks.append)
    assert {p.block for p in seen_whole} == {0} and {p.block for p in seen_blocks} == {48}
    for a, b in zip(seen_whole, seen_blocks):
        assert set(a.losses) == set(b.losses) == {"content", "style", "tv"}
        assert b.loss == pytest.approx(a.loss, rel=rel)
    assert seen_whole[-1].loss < 0.7 * seen_whole[0].loss  # the run did move (measured 0.61)
    a, b, p = (np.asarray(i, np.float64) for i in (whole, in_blocks, photo))
    assert np.abs(a - p).mean() > 10  # 8-bit levels; measured 25
    diff = np.abs(a - b)
    assert diff.mean() < mean and np.percentile(diff, 99.5) <= p995  # fp32: 0.16 (a few clamped pixels differ more)


def test_out_of_memory_falls_back_to_smaller_blocks_and_resumes(style_img, monkeypatch):
    photo = _gradient(128, 96, seed=8)
    cfg = StyleConfig(size=128, steps=6, scales=1, init="content", precision="fp32", max_memory="64GB",
                      content_layers=("relu3_2",), style_layers=("relu1_1", "relu2_1", "relu3_1"))  # fmt: skip
    net = get_vgg(cfg.last_layer, device=str(pick_device(cfg.device)))  # where the run computes (a GPU too)
    calls = {"n": 0}

    class Flaky:
        """The real network, but a whole-image pass with a graph fails once, as a full GPU would."""

        def __getattr__(self, name):
            return getattr(net, name)

        def __call__(self, img, names):
            if img.requires_grad and img.shape[-1] == 128:
                calls["n"] += 1
                if calls["n"] == 4:  # the closure of step 4
                    raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return net(img, names)

    monkeypatch.setattr("painterly.stylize.get_vgg", lambda *a, **k: Flaky())
    seen: list[Progress] = []
    out = stylize(photo, style_img, cfg, on_progress=seen.append)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5, 6]  # resumed at step 4, not restarted
    assert [p.block for p in seen] == [0, 0, 0, 64, 64, 64]  # half the long side, then smaller
    assert seen[3].loss <= seen[2].loss * 1.01  # went on from where it was
    assert out.size == (128, 96)
    monkeypatch.setattr("painterly.stylize.get_vgg", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):  # anything else is not swallowed
        stylize(photo, style_img, cfg)
