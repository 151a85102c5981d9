"""precision: bf16 only where the hardware has it, and only the convolutions in it."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from painterly import precision
from painterly.config import ConfigError, StyleConfig
from painterly.stylize import stylize
from painterly.vgg import get_vgg

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def fresh_decision():
    precision.resolve.cache_clear()
    yield
    precision.resolve.cache_clear()


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (frozenset({"avx2", "fma"}), "fp32"),  # an AMD EPYC / older Xeon: bf16 would be emulated, 10-100x slower
        (frozenset({"avx2", "avx512f", "avx512_bf16"}), "bf16"),  # Cooper Lake and later
        (frozenset({"avx2", "amx_tile", "amx_bf16"}), "bf16"),
        (frozenset(), "fp32"),  # no /proc/cpuinfo: never guess bf16
    ],
)
def test_auto_picks_bf16_only_on_cpus_with_bf16_units(monkeypatch, flags, expected):
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    assert precision.resolve("auto", "cpu") == expected
    assert precision.resolve("fp32", "cpu") == "fp32"  # an explicit choice is kept
    assert precision.resolve("bf16", "cpu") == "bf16"


def test_auto_on_gpus_and_fp16_on_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda: True)
    assert precision.resolve("auto", "cuda") == "bf16"
    monkeypatch.setattr(precision, "cuda_has_bf16", lambda: False)
    precision.resolve.cache_clear()
    assert precision.resolve("auto", "cuda") == "fp32"
    assert precision.resolve("auto", "mps") == "fp32"
    assert precision.resolve("fp16", "cpu") == "fp16"  # what was asked; the run refuses it:
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        precision.autocast("fp16", "cpu")


def test_the_option_is_validated(content_img, style_img):
    assert StyleConfig().precision == "auto"
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        stylize(content_img, style_img, StyleConfig(size=32, steps=1, precision="fp16", device="cpu"))
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16, fp16"):
        StyleConfig(precision="fp8")


def _step_gradient(prec: str, kind: str) -> torch.Tensor:
    """The gradient of the engine's loss (relu4_2 content, five style layers) for one 64 px image,
    the features passed to the losses as the convolutions left them, as stylize does."""
    from painterly.losses import content_loss, style_distance, style_statistic

    net = get_vgg("relu5_1", "max")
    gen = torch.Generator().manual_seed(0)
    photo, painting = torch.rand(1, 3, 48, 64, generator=gen), torch.rand(1, 3, 64, 64, generator=gen)
    sl = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    x = photo.clone().add_(0.1 * torch.randn(photo.shape, generator=gen)).clamp_(0, 1).requires_grad_(True)
    with torch.no_grad(), precision.autocast(prec, "cpu"):
        c = net(photo, ("relu4_2",))["relu4_2"]
        s = {k: style_statistic(v, kind) for k, v in net(painting, sl).items()}
    if kind == "w2":
        from painterly.losses import blend_moments

        s = {k: blend_moments([v], [1.0]) for k, v in s.items()}
    with precision.autocast(prec, "cpu"):
        f = net(x, ("relu4_2",) + sl)
    loss = content_loss(f["relu4_2"], c, "mean") + 5e-3 * sum(style_distance(f[k], s[k], kind) for k in sl)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


@pytest.mark.parametrize("kind", ["gram", "w2"])
def test_a_bf16_steps_gradient_is_close_to_fp32s(kind):
    g32, g16 = _step_gradient("fp32", kind), _step_gradient("bf16", kind)
    assert g16.dtype == torch.float32  # the image's gradient stays fp32
    cos = torch.nn.functional.cosine_similarity(g32.flatten(), g16.flatten(), dim=0)
    assert float(cos) >= 0.99


def test_only_the_convolutions_run_in_bf16(monkeypatch, content_img, style_img):
    # The features arrive in bf16, as the convolutions leave them; every statistic and loss made
    # of them is fp32, and so is the image's gradient.
    import painterly.losses as losses

    features: set[torch.dtype] = set()
    statistics: set[torch.dtype] = set()
    real_distance, real_statistic = losses.statistic_distance, losses.style_statistic

    def spy_statistic(f, *args, **kwargs):
        features.add(f.dtype)
        return real_statistic(f, *args, **kwargs)

    def spy_distance(statistic, target, *args, **kwargs):
        statistics.update(t.dtype for t in (statistic if isinstance(statistic, tuple) else (statistic,)))
        out = real_distance(statistic, target, *args, **kwargs)
        statistics.add(out.dtype)
        return out

    monkeypatch.setattr(losses, "style_statistic", spy_statistic)
    monkeypatch.setattr(losses, "statistic_distance", spy_distance)
    steps: list = []
    cfg = StyleConfig(size=48, steps=4, scales=1, precision="bf16", init="content")
    out = stylize(content_img, style_img, cfg, on_progress=steps.append)
    assert features == {torch.bfloat16} and statistics == {torch.float32}
    assert isinstance(out, Image.Image) and out.size == (48, 32)
    assert {p.precision for p in steps} == {"bf16"}
    assert steps[-1].loss < steps[0].loss  # it converges


def test_auto_reports_what_it_resolved_to(monkeypatch, content_img, style_img):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    steps: list = []
    # On the CPU: a machine with a CUDA GPU resolves auto for the GPU (bf16 there, seen on an H200).
    cfg = StyleConfig(size=32, steps=1, scales=1, init="content", device="cpu")
    stylize(content_img, style_img, cfg, on_progress=steps.append)
    assert steps[-1].precision == "fp32"


def test_the_studios_estimate_knows_the_precision(monkeypatch):
    # Estimates made before a run (the studio's) ask precision.py which arithmetic the workers
    # will use on this machine, and its measured cost; a bf16 machine gets a shorter estimate.
    from painterly.app import logic

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "amx_tile", "amx_bf16"}))
    fast = logic.estimate_seconds(StyleConfig(size=512), 600, 400)
    slow = logic.estimate_seconds(StyleConfig(size=512, precision="fp32"), 600, 400)
    assert fast < 0.8 * slow
    precision.resolve.cache_clear()
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert logic.estimate_seconds(StyleConfig(size=512), 600, 400) == slow  # auto is fp32 there
