"""stylize() end to end on tiny images: it optimises, keeps the content, and every option works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from painterly import images as im
from painterly.config import PRESETS, StyleConfig
from painterly.plan import RunPlan
from painterly.stylize import Cancelled, Progress, stylize
from painterly.vgg import get_vgg

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**changes) -> StyleConfig:
    return StyleConfig(**{"size": 48, "steps": 10, "scales": 1, **changes})


def run(content, styles, cfg, **kw) -> tuple[Image.Image, list[Progress]]:
    seen: list[Progress] = []
    out = stylize(content, styles, cfg, on_progress=seen.append, **kw)
    return out, seen


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64) / 255.0


def luma(img: Image.Image) -> np.ndarray:
    return arr(img) @ np.array([0.299, 0.587, 0.114])


@pytest.fixture
def shapes_img() -> Image.Image:
    """A 'photo' with content to recognise: a blue disc and a red bar on a light ground, 48x32."""
    yy, xx = np.mgrid[0:32, 0:48]
    a = np.full((32, 48, 3), 220.0)
    a[(xx - 14) ** 2 + (yy - 16) ** 2 < 100] = (30, 30, 140)
    a[6:26, 30:40] = (150, 40, 30)
    return Image.fromarray(a.astype(np.uint8))


def blurred_luma(img: Image.Image, k: int = 4) -> np.ndarray:
    """Luminance averaged over k x k blocks: the layout of the picture, without the brush strokes."""
    a = luma(img)
    h, w = a.shape[0] // k * k, a.shape[1] // k * k
    return a[:h, :w].reshape(h // k, k, w // k, k).mean((1, 3))


@pytest.mark.parametrize("style_loss", ["gram", "w2", "sliced"])
def test_lowers_style_loss_keeps_content_and_aspect(shapes_img, style_img, style_loss):
    # From the photo (not the preview warm start), so the change is the optimiser's own.
    # Equal layer weights for every loss: at 48 px the 4^-block weights of the distribution
    # losses put relu1_1's texture over a photo this small (the default is judged at real sizes).
    weight = {"gram": 5e-3, "w2": 1e-2, "sliced": 5e-3}[style_loss]
    # content_fine=0: relu4_2 alone, as this test was set for. At 48 px the small-size rule's relu3_2
    # moves the layout correlation below by -0.02 to +0.01 (w2 0.721 -> 0.698, gram 0.857 -> 0.870,
    # sliced 0.797 -> 0.802); that rule has its own test below.
    cfg = StyleConfig(size=48, steps=12, scales=1, init="content", style_loss=style_loss, style_weight=weight,
                      style_layer_weights=(0.2,) * 5, content_fine=0.0)  # fmt: skip
    out, seen = run(shapes_img, style_img, cfg)
    assert out.size == (48, 32)  # the content's aspect ratio
    assert [p.step for p in seen] == list(range(1, 13)) and all(p.steps == 12 for p in seen)
    assert seen[-1].losses["style"] < 0.5 * seen[0].losses["style"]
    # The content stays recognisable: the layout of its luminance still matches the photo's
    # (an unrelated picture scores near 0). Measured over fp32/bf16, 1/2 CPU threads and 11-13
    # steps (2026-12-01): gram 0.68-0.85, sliced 0.67-0.74, w2 0.51-0.66. w2 sits lowest whatever
    # its weight (0.005-0.01), and a change of float rounding alone moves it by 0.1: at 12 steps
    # 0.51-0.62 over threads and precision, 0.53-0.57 with the W2 matrices' tiny entries zeroed
    # (losses._narrow). The 0.6 this once asked passed only in bf16 on one thread.
    r = np.corrcoef(blurred_luma(out).ravel(), blurred_luma(shapes_img).ravel())[0, 1]
    assert r > 0.4
    # ...but the picture did change: the stripes moved in (measured 0.23 mean difference).
    assert np.abs(arr(out) - arr(shapes_img)).mean() > 0.1


def test_progress_reports_terms_scales_and_preview_images(content_img, style_img):
    cfg = StyleConfig(size=48, steps=9, scales=2, preview_every=4, tv_weight=1.0)
    out, seen = run(content_img, style_img, cfg)
    plan = RunPlan.build(cfg, *content_img.size).scales
    assert [s for _, s in plan] == [6, 3] and plan[-1][0] == (48, 32) and plan[0][0] == (24, 16)
    assert [p.scale for p in seen] == [1] * 6 + [2] * 3 and all(p.scales == 2 for p in seen)
    assert [p.size for p in seen] == [(24, 16)] * 6 + [(48, 32)] * 3
    with_image = [p.step for p in seen if p.image is not None]
    assert with_image == [4, 6, 8, 9]  # every 4 steps, the end of each scale, the last step
    assert all(p.image.size == (48, 32) for p in seen if p.image is not None)
    for p in seen:
        assert set(p.losses) == {"content", "style", "tv"}
        assert p.loss == pytest.approx(sum(p.losses.values()), rel=1e-5)
    assert [p.elapsed for p in seen] == sorted(p.elapsed for p in seen)
    assert np.array_equal(arr(seen[-1].image), arr(out))


def test_same_seed_same_result(content_img, style_img):
    cfg = tiny(init="noise", steps=5, seed=3)
    a, _ = run(content_img, style_img, cfg)
    b, _ = run(content_img, style_img, cfg)
    c, _ = run(content_img, style_img, cfg.replace(seed=4))
    assert np.array_equal(arr(a), arr(b))
    assert not np.array_equal(arr(a), arr(c))


def test_cancel_returns_an_image_of_the_final_size(content_img, style_img):
    calls = []

    def stop_at_3(p: Progress) -> None:
        calls.append(p.step)
        if p.step == 3:
            raise Cancelled

    # From the photo, so "the best so far" after 3 steps must still look like it.
    cfg = StyleConfig(size=48, steps=20, scales=2, init="content")  # step 3 is in the coarse 24x16 scale
    out = stylize(content_img, style_img, cfg, on_progress=stop_at_3)
    assert calls == [1, 2, 3]
    assert out.size == (48, 32)
    assert np.corrcoef(luma(out).ravel(), luma(content_img).ravel())[0, 1] > 0.8


def test_resume_continues_the_schedule(content_img, style_img):
    cfg = StyleConfig(size=48, steps=9, scales=2, preview_every=1)  # plan: 6 steps at 24 px, 3 at 48 px
    _, first = run(content_img, style_img, cfg)
    for at in (3, 6):  # mid-scale and at a scale boundary
        checkpoint = first[at - 1]
        out, seen = run(content_img, style_img, cfg, init_image=checkpoint.image, start_step=at)
        assert [p.step for p in seen] == list(range(at + 1, 10))
        assert [p.scale for p in seen] == [1] * (6 - at) + [2] * 3
        assert out.size == (48, 32)
        # It picks up where the uninterrupted run was (up to the 8-bit checkpoint and the
        # optimiser's lost history), not where a run from the photo would be.
        resumed, uninterrupted = seen[0].losses["style"], first[at].losses["style"]
        assert abs(resumed - uninterrupted) < 0.2 * uninterrupted
    assert first[3].losses["style"] < 0.5 * first[0].losses["style"]  # so the mid-scale check means something
    with pytest.raises(ValueError, match="init_image is required"):
        stylize(content_img, style_img, cfg, start_step=3)
    with pytest.raises(ValueError, match="start_step"):
        stylize(content_img, style_img, cfg, init_image=content_img, start_step=9)


@pytest.mark.parametrize("style_loss", ["gram", "w2", "sliced"])
def test_multi_style_blend(content_img, style_img, style_loss):
    other = Image.fromarray(np.full((24, 24, 3), (30, 160, 220), np.uint8))
    cfg = tiny(steps=4, style_loss=style_loss)
    only_a, _ = run(content_img, style_img, cfg)
    a_of_two, _ = run(content_img, [style_img, other], cfg.replace(style_blend=(1.0, 0.0)))
    mix, _ = run(content_img, [style_img, other], cfg.replace(style_blend=(1.0, 1.0)))
    equal, _ = run(content_img, [style_img, other], cfg)  # empty blend = equal weights
    assert np.array_equal(arr(only_a), arr(a_of_two))  # weight 0 removes a style exactly
    assert np.array_equal(arr(mix), arr(equal))
    assert np.abs(arr(mix) - arr(only_a)).mean() > 0.005
    with pytest.raises(ValueError, match="2 weights for 1 style"):
        stylize(content_img, style_img, cfg.replace(style_blend=(1.0, 2.0)))
    with pytest.raises(ValueError, match="at least one style"):
        stylize(content_img, [], cfg)


def _iq(img: Image.Image) -> np.ndarray:
    return (arr(img) @ im._RGB2YIQ.T)[..., 1:]


def test_colour_modes_keep_the_photos_colours(content_img):
    # A strongly coloured painting (red/yellow) on a photo with other colours.
    yy, xx = np.mgrid[0:40, 0:40]
    red = np.stack([np.full((40, 40), 230), 120 * ((xx + yy) // 4 % 2), np.full((40, 40), 20)], -1)
    painting = Image.fromarray(red.astype(np.uint8))
    # The Gram loss: cheap at tiny sizes, and the colour modes do not depend on the loss.
    cfg = tiny(steps=8, style_weight=0.05, style_loss="gram")
    plain, _ = run(content_img, painting, cfg)
    lum, _ = run(content_img, painting, cfg.replace(color="luminance"))
    hist, _ = run(content_img, painting, cfg.replace(color="histogram"))
    half, _ = run(content_img, painting, cfg.replace(color="luminance", color_strength=0.5))

    def colour_error(img: Image.Image) -> float:
        return float(np.abs(_iq(img) - _iq(content_img)).mean())

    # Luminance-only: the photo's chroma exactly (up to rounding), at any strength.
    assert colour_error(lum) < 0.02 and colour_error(half) < 0.02
    assert colour_error(lum) < 0.5 * colour_error(plain)

    # Histogram matching recolours the painting first: the result's mean colour stays the photo's.
    def mean_colour_error(img: Image.Image) -> float:
        return float(np.abs(arr(img).mean((0, 1)) - arr(content_img).mean((0, 1))).sum())

    assert mean_colour_error(hist) < 0.5 * mean_colour_error(plain)


def test_luminance_mode_keeps_a_night_photo_dark(content_img):
    # Gatys et al. 2016: the painting's luminance is matched to the photo's before a
    # luminance-only transfer, so a dark photo under a bright painting stays dark.
    night = Image.fromarray((arr(content_img) * 0.25 * 255).astype(np.uint8))  # mean luma ~0.1
    yy, xx = np.mgrid[0:40, 0:40]
    bright = np.stack([np.full((40, 40), 250), 200 + 50 * ((xx + yy) // 4 % 2), np.full((40, 40), 180)], -1)
    painting = Image.fromarray(bright.astype(np.uint8))  # mean luma ~0.9
    cfg = tiny(steps=8, style_weight=0.05, style_loss="gram")
    plain, _ = run(night, painting, cfg)
    lum, _ = run(night, painting, cfg.replace(color="luminance"))
    half, _ = run(night, painting, cfg.replace(color="luminance", color_strength=0.5))
    photo = float(luma(night).mean())
    assert photo < 0.2
    assert float(luma(plain).mean()) > photo + 0.2  # in the painting's colours, it turns bright
    assert abs(float(luma(lum).mean()) - photo) < 0.05  # matched: it stays a night
    assert float(luma(lum).mean()) < float(luma(half).mean()) < float(luma(plain).mean())


def test_init_modes_with_a_frozen_optimiser(content_img, style_img):
    # Adam with lr 0 does not move the pixels: the output is the start image itself.
    cfg = tiny(steps=1, optimizer="adam", lr=0.0)
    out, _ = run(content_img, style_img, cfg.replace(init="content"))
    assert np.abs(arr(out) - arr(content_img)).max() <= 1 / 255
    start = Image.new("RGB", (96, 64), (10, 200, 90))
    out, _ = run(content_img, style_img, cfg.replace(init="image"), init_image=start)
    assert out.size == (48, 32) and np.abs(arr(out) - np.array([10, 200, 90]) / 255).max() <= 1 / 255
    out, _ = run(content_img, style_img, cfg.replace(init="noise", seed=5))
    noise = torch.rand((1, 3, 32, 48), generator=torch.Generator().manual_seed(5))
    assert np.array_equal(np.asarray(out), np.asarray(im.to_image(noise)))
    with pytest.raises(ValueError, match="init_image is required"):
        stylize(content_img, style_img, cfg.replace(init="image"))


@pytest.mark.parametrize("optimizer, lr", [("lbfgs", 1.0), ("adam", 0.05)])
def test_both_optimisers_lower_the_loss(content_img, style_img, optimizer, lr):
    _, seen = run(content_img, style_img, tiny(optimizer=optimizer, lr=lr, steps=8))
    assert all(np.isfinite(p.loss) for p in seen)
    assert seen[-1].loss < 0.7 * seen[0].loss


def test_pooling_and_layers_change_the_result(content_img, style_img):
    cfg = tiny(steps=3)
    a, _ = run(content_img, style_img, cfg)
    b, _ = run(content_img, style_img, cfg.replace(pooling="avg"))
    c, seen = run(content_img, style_img, cfg.replace(content_layers=(), style_layers=("relu1_1",)))
    assert not np.array_equal(arr(a), arr(b))
    assert set(seen[0].losses) == {"style"}


def test_classic_preset_runs(content_img, style_img):
    cfg = PRESETS["classic"].replace(steps=6, size=32)
    assert cfg.last_layer == "conv5_1" and get_vgg(cfg.last_layer).names[-1] == "conv5_1"
    out, seen = run(content_img, style_img, cfg)
    assert out.size == (32, 21) and len(seen) == 6 and all(p.scales == 1 for p in seen)
    assert all(np.isfinite(p.loss) for p in seen) and seen[-1].loss < seen[0].loss
    assert set(seen[0].losses) == {"content", "style"}
    # Content starts at zero (init from the content photo) and grows as the style moves in.
    assert seen[0].losses["content"] == 0.0 and seen[-1].losses["content"] > 0


def test_a_step_that_wrecks_the_picture_is_undone(content_img, style_img):
    # L-BFGS without a line search and a far too long step length jumps far off at its second
    # step; the engine goes back to the iterate before the jump and restarts the history, so the
    # loss never ends above where the run began.
    cfg = StyleConfig(size=48, steps=8, scales=1, init="content", lr=500.0, precision="fp32")
    _, seen = run(content_img, style_img, cfg)
    losses = [p.loss for p in seen]
    assert all(np.isfinite(losses))
    assert max(losses) <= 1.5 * losses[0]  # no reported step is a wreck
    assert losses[-1] <= losses[0]


def test_lbfgs_learns_from_the_step_the_clamp_left():
    # A quadratic whose minimum lies two thirds outside [0, 1]: the clamped L-BFGS must reach the
    # box's own minimum. When its curvature pairs took the step it proposed rather than the one
    # the clamp left, it stalled 43.5 above it (steps clamped away, the pairs then skipped).
    from painterly.stylize import _optimise

    gen = torch.Generator().manual_seed(0)
    target = torch.rand(1, 3, 8, 8, generator=gen) * 3 - 1
    scale = torch.rand(1, 3, 8, 8, generator=gen) * 9 + 1  # ill-conditioned, as pixels are
    x = torch.full((1, 3, 8, 8), 0.5, requires_grad=True)

    def closure():
        return (scale * (x - target) ** 2).sum(), {}

    losses = [loss for loss, _ in _optimise(StyleConfig(size=16, steps=30), x, closure, 30)]
    best = float((scale * (target.clamp(0, 1) - target) ** 2).sum())
    assert losses[-1] - best < 0.5
    assert float((x.detach() - target.clamp(0, 1)).abs().max()) < 0.1


def test_iterate_averaging_is_the_bias_corrected_moving_average_of_the_steps(content_img, style_img):
    # Within a scale averaging does not change the iterates, only what is shown and returned:
    # step k of the averaged run is sum_i d^(k-i) (1-d) x_i / (1 - d^k) of the plain run's x_i.
    # On the CPU, where two runs are the same arithmetic. On a GPU two runs need not give the same
    # bits (cuDNN promises no determinism by default): there the images differed by 2.1/255 (H200).
    cfg = StyleConfig(size=48, steps=6, scales=1, init="content", preview_every=1, precision="fp32", device="cpu")
    _, plain = run(content_img, style_img, cfg)
    out, averaged = run(content_img, style_img, cfg.replace(average=0.5))
    xs = [arr(p.image) for p in plain]
    ema, weight = np.zeros_like(xs[0]), 0.0
    for x, p in zip(xs, averaged):
        ema, weight = 0.5 * ema + 0.5 * x, 0.5 * weight + 0.5
        assert np.abs(arr(p.image) - ema / weight).max() <= 2 / 255
    assert [p.loss for p in averaged] == [p.loss for p in plain]  # the same iterates
    assert np.array_equal(arr(out), arr(averaged[-1].image))
    assert np.abs(xs[-1] - arr(out)).mean() > 1 / 255  # the average is not the last image


def test_a_small_picture_also_matches_the_shallower_content_layer(monkeypatch, content_img, style_img):
    """Below plan.CONTENT_FULL_SIZE the content term also reads relu3_2 (plan.content_weights);
    at and above it, content_fine changes nothing: the picture is the one the option-off run makes,
    to the bit. The threshold is moved to 48 px here so that tiny runs stand on both sides of it."""
    from painterly import plan

    monkeypatch.setattr(plan, "CONTENT_FULL_SIZE", 48)
    cfg = tiny(steps=4, init="content")
    for size in (48, 64):  # at and above: the same picture with the option on and off
        on, _ = run(content_img, style_img, cfg.replace(size=size))
        off, _ = run(content_img, style_img, cfg.replace(size=size, content_fine=0.0))
        assert np.array_equal(arr(on), arr(off)), size
    on, seen_on = run(content_img, style_img, cfg.replace(size=24))  # half the threshold: relu3_2 in full
    off, seen_off = run(content_img, style_img, cfg.replace(size=24, content_fine=0.0))
    # the first loss is of the start image, the photo itself: no content loss at any layer
    assert seen_on[0].losses["content"] == seen_off[0].losses["content"] == 0.0
    assert seen_on[-1].losses["content"] > 1.05 * seen_off[-1].losses["content"]  # relu3_2's term is there
    assert not np.array_equal(arr(on), arr(off))
