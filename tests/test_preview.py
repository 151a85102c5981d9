"""The instant preview (Magenta's arbitrary-style networks via onnxruntime) on tiny images.

Every test runs the real ONNX networks; a 384x384 forward pass takes ~0.1-0.2 s on 2 cores.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from painterly.config import StyleConfig
from painterly.images import _RGB2YIQ, ImageError, fit_size
from painterly.preview import preview, style_embedding

# The module itself (``painterly.preview`` as an attribute is the function, by the lazy exports).
pv = importlib.import_module("painterly.preview")


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def _mad(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute pixel difference (0..255) of two same-size images."""
    return float(np.abs(_arr(a) - _arr(b)).mean())


@pytest.fixture
def style2() -> Image.Image:
    """A second 'painting', unlike the first: soft blobs in warm colours, 36x48."""
    yy, xx = np.mgrid[0:48, 0:36].astype(np.float32)
    blob = 0.5 + 0.5 * np.sin(xx / 5.0) * np.sin(yy / 7.0)
    a = np.stack([0.6 + 0.4 * blob, 0.3 * blob, 0.1 + 0.0 * blob], -1)
    return Image.fromarray((a * 255).astype(np.uint8), "RGB")


# --- size and shape ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wh", "size"),
    [((48, 32), 48), ((48, 32), 512), ((32, 48), 100), ((40, 40), 16), ((200, 20), 384), ((7, 300), 1024)],
)
def test_output_size_keeps_aspect_and_matches_stylize(style_img, wh, size):
    content = Image.new("RGB", wh, (120, 80, 40))
    out = preview(content, style_img, size=size)
    assert out.mode == "RGB"
    # The same size stylize() produces at config.size == size, so the warm start fits exactly.
    assert out.size == fit_size(*wh, size)
    assert max(out.size) == size


def test_output_is_stylised_not_the_photo(content_img, style_img):
    out = preview(content_img, style_img, size=48)
    assert _mad(out, content_img) > 20  # the network repainted it
    assert len(np.unique(_arr(out).reshape(-1, 3), axis=0)) > 50  # a picture, not a flat fill


# --- determinism and thread safety -----------------------------------------------------


def test_deterministic_also_without_the_embedding_cache(content_img, style_img):
    a = preview(content_img, style_img, size=64)
    pv._embeddings.clear()
    b = preview(content_img, style_img, size=64)
    assert np.array_equal(_arr(a), _arr(b))


def test_concurrent_first_use_loads_once_and_agrees(content_img, style_img, monkeypatch):
    expected = _arr(preview(content_img, style_img, size=48))
    monkeypatch.setattr(pv, "_nets", None)  # a fresh process: the threads race to load
    loads = []
    real_load = pv._load_networks
    monkeypatch.setattr(pv, "_load_networks", lambda: loads.append(1) or real_load())
    pv._embeddings.clear()
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(_arr(preview(content_img, style_img, size=48)))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert len(results) == 4 and all(np.array_equal(r, expected) for r in results)


# --- strength, blending, colour ----------------------------------------------------------


def test_strength_zero_is_the_content_only_pass(content_img, style_img):
    # Strength interpolates the embedding towards the photo's own: at 0 the painting is gone.
    zero = preview(content_img, style_img, size=48, strength=0.0)
    own = preview(content_img, content_img, size=48)
    assert np.array_equal(_arr(zero), _arr(own))


def test_strength_moves_the_result_away_from_the_photo_monotonically(content_img, style_img):
    dist = [_mad(preview(content_img, style_img, size=48, strength=s), content_img) for s in (0, 0.25, 0.5, 1)]
    assert dist == sorted(dist), dist
    assert dist[-1] > dist[0] + 10, dist


def test_blend_weights_select_and_mix_styles(content_img, style_img, style2):
    one = preview(content_img, style_img, size=48)
    two = preview(content_img, style2, size=48)
    assert _mad(one, two) > 10  # the two paintings give different pictures
    only_first = preview(content_img, [style_img, style2], size=48, style_blend=(1, 0))
    assert np.array_equal(_arr(only_first), _arr(one))
    equal = preview(content_img, [style_img, style2], size=48)
    assert np.array_equal(_arr(equal), _arr(preview(content_img, [style_img, style2], size=48, style_blend=(3, 3))))
    # The mix lies between its parents: closer to each than they are to each other.
    assert _mad(equal, one) < _mad(one, two) and _mad(equal, two) < _mad(one, two)


def _chroma(img: Image.Image) -> np.ndarray:
    return (_arr(img) / 255.0 @ _RGB2YIQ.T)[..., 1:]


def test_luminance_mode_keeps_the_photos_colours(content_img, style_img):
    plain = preview(content_img, style_img, size=48)
    kept = preview(content_img, style_img, size=48, color="luminance")
    photo = _chroma(content_img)
    # Not exactly the photo's chroma: the recombined YIQ is clipped to the RGB gamut.
    kept_err, plain_err = (float(np.abs(_chroma(x) - photo).mean()) for x in (kept, plain))
    assert kept_err < 0.25 * plain_err, (kept_err, plain_err)
    # color_strength sets how far the paintings' brightness is matched; the colours stay the photo's.
    off = preview(content_img, style_img, size=48, color="luminance", color_strength=0.0)
    assert float(np.abs(_chroma(off) - photo).mean()) < 0.25 * plain_err


def test_luminance_mode_keeps_a_night_photo_dark(content_img):
    # As stylize: the painting's brightness is matched to the photo's (Gatys et al. 2016).
    night = Image.fromarray((_arr(content_img) * 0.25).astype(np.uint8))  # _arr is 0..255
    bright = Image.fromarray(np.full((40, 40, 3), (250, 230, 180), np.uint8))
    luma = np.array([0.299, 0.587, 0.114]) / 255.0
    photo = float((_arr(night) @ luma).mean())
    kept = float((_arr(preview(night, bright, size=48, color="luminance")) @ luma).mean())
    plain = float((_arr(preview(night, bright, size=48)) @ luma).mean())
    assert abs(kept - photo) < abs(plain - photo)
    assert abs(kept - photo) < 0.08, (kept, photo, plain)


def test_histogram_mode_moves_the_colours_towards_the_photo(content_img, style_img):
    plain = preview(content_img, style_img, size=48)
    matched = preview(content_img, style_img, size=48, color="histogram")
    mean = _arr(content_img).reshape(-1, 3).mean(0)
    assert (
        np.abs(_arr(matched).reshape(-1, 3).mean(0) - mean).sum()
        < np.abs(_arr(plain).reshape(-1, 3).mean(0) - mean).sum()
    )
    off = preview(content_img, style_img, size=48, color="histogram", color_strength=0.0)
    assert np.array_equal(_arr(off), _arr(plain))


# --- the style embedding (the benchmarks' independent style measure) -----------------------


def test_style_embedding_shape_and_sense(content_img, style_img, style2):
    e1 = style_embedding(style_img)
    assert e1.shape == (pv.EMBEDDING_DIM,) and e1.dtype == np.float32
    assert np.array_equal(e1, style_embedding(style_img.copy()))
    e1[:] = 0  # the caller's copy; the cache must not change
    e1 = style_embedding(style_img)
    assert np.linalg.norm(e1) > 0
    # The same painting rescaled is nearer to itself than to a different painting.
    rescaled = style_embedding(style_img.resize((60, 60), Image.Resampling.BICUBIC))
    assert np.linalg.norm(rescaled - e1) < np.linalg.norm(style_embedding(style2) - e1)
    assert np.linalg.norm(style_embedding(content_img) - e1) > 0


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"this is not an image", "not an image"),
        (42, "expected a PIL image"),
        ("/nonexistent/photo.jpg", "no such file"),
        (Image.new("RGB", (0, 0)), "zero size"),
    ],
)
def test_bad_content_is_a_clear_image_error(style_img, content, match):
    with pytest.raises(ImageError, match=match):
        preview(content, style_img)


def test_bad_style_is_a_clear_image_error(content_img):
    with pytest.raises(ImageError, match="style image"):
        preview(content_img, [b"\x89PNG broken"])
    with pytest.raises(ImageError, match="style image"):
        preview(content_img, 3.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "size must be"),
        ({"size": 9000}, "size must be"),
        ({"size": 256.0}, "size must be"),
        ({"size": True}, "size must be"),
        ({"size": "512"}, "size must be"),
        ({"strength": 1.5}, "strength must be"),
        ({"strength": float("nan")}, "strength must be"),
        ({"color": "sepia"}, "color must be one of"),
        ({"color_strength": -0.1}, "color_strength must be"),
        ({"style_blend": (1, 2)}, "2 weights for 1 style"),
        ({"style_blend": (0,)}, "not all be zero"),
        ({"style_blend": (-1,)}, "non-negative"),
    ],
)
def test_bad_options_are_clear_value_errors(content_img, style_img, kwargs, match):
    with pytest.raises(ValueError, match=match):
        preview(content_img, style_img, **kwargs)


def test_no_styles_is_an_error(content_img):
    with pytest.raises(ValueError, match="at least one style"):
        preview(content_img, [])


# --- start-up cost ------------------------------------------------------------------------


def test_preview_never_imports_torch(tmp_path):
    code = (
        "import sys\nfrom PIL import Image\nfrom painterly.preview import preview\n"
        "out = preview(Image.new('RGB', (32, 24), 'red'), Image.new('RGB', (20, 20), 'blue'), size=32)\n"
        "assert out.size == (32, 24), out.size\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# --- warm start through the engine ---------------------------------------------------------


def test_init_preview_starts_the_optimiser_from_the_preview(content_img, style_img):
    from painterly.stylize import Cancelled, stylize

    def stop(_progress) -> None:
        raise Cancelled

    # Cancelled before any step has moved the pixels, stylize returns its start image.
    cfg = StyleConfig(size=48, steps=4, scales=1, init="preview", optimizer="adam", lr=0.02)
    start = stylize(content_img, style_img, cfg, on_progress=stop)
    assert np.array_equal(_arr(start), _arr(preview(content_img, style_img, size=48)))
    from_photo = stylize(content_img, style_img, cfg.replace(init="content"), on_progress=stop)
    assert _mad(from_photo, content_img.resize(from_photo.size, Image.Resampling.LANCZOS)) < 1

    # And a whole (short) run from the preview finishes at the right size.
    seen = []
    out = stylize(
        content_img, style_img, StyleConfig(size=48, steps=3, scales=2, init="preview"), on_progress=seen.append
    )
    assert out.size == (48, 32) and len(seen) == 3
    assert all(np.isfinite(p.loss) for p in seen)


def test_warm_start_begins_nearer_the_style_on_real_images(shared_images):
    from painterly.images import load_image

    content = load_image(shared_images / "content_chelsea.jpg")
    style = load_image(shared_images / "style_starry_night.jpg")
    out = preview(content, style, size=256)
    e_style, e_out, e_photo = (style_embedding(x) for x in (style, out, content))
    # The preview carries the painting's style: its embedding moved from the photo's towards the painting's.
    assert np.linalg.norm(e_out - e_style) < 0.7 * np.linalg.norm(e_photo - e_style)


# --- the command line ----------------------------------------------------------------------


def _cli_has_preview() -> bool:
    from painterly.cli import make_parser

    try:
        make_parser().parse_args(["preview", "--help"])
    except SystemExit as e:
        return e.code == 0
    return False


def test_cli_preview_writes_the_picture(tmp_path: Path, content_img, style_img, style2, capsys):
    if not _cli_has_preview():
        pytest.skip("the CLI's preview subcommand has not landed yet (owned by the CLI engineer)")
    from painterly.cli import main

    capsys.readouterr()
    c, s1, s2 = tmp_path / "c.png", tmp_path / "s1.png", tmp_path / "s2.jpg"
    content_img.save(c)
    style_img.save(s1)
    style2.save(s2)
    out = tmp_path / "out.png"
    assert main(["preview", str(c), str(s1), str(s2), "-o", str(out), "--size", "64"]) == 0
    got = Image.open(out)
    assert got.size == (64, 43)
    assert np.array_equal(_arr(got.convert("RGB")), _arr(preview(content_img, [style_img, Image.open(s2)], size=64)))
    # A bad input: non-zero status, one clear line, no output file.
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    out2 = tmp_path / "out2.png"
    assert main(["preview", str(bad), str(s1), "-o", str(out2)]) != 0
    assert not out2.exists()
    assert "not an image" in capsys.readouterr().err
