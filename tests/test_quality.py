"""The benchmarks' network-free second opinion (benchmarks/quality.py): colour and texture
distances to the painting. Needs the bench extras (scikit-image, scipy) and the repository
root on sys.path (``python -m pytest`` from the root puts it there)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image, ImageFilter

pytest.importorskip("skimage")
pytest.importorskip("scipy")
quality = pytest.importorskip("benchmarks.quality")


def _texture(w: int = 96, h: int = 80, seed: int = 0) -> Image.Image:
    """A colourful painting-like texture: oriented stripes, blobs and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    swirl = np.sin(xx / 3 + 2 * np.sin(yy / 9)) * np.cos(yy / 5)
    a = np.stack([0.5 + 0.3 * swirl, 0.4 + 0.2 * np.roll(swirl, 3, 0), 0.6 - 0.3 * swirl], -1)
    a += 0.08 * rng.standard_normal((h, w, 3))
    return Image.fromarray((a.clip(0, 1) * 255).astype(np.uint8), "RGB")


def _shift_colour(img: Image.Image, da: float, db: float) -> Image.Image:
    """The same picture with its chroma moved in Lab (luminance, hence texture, kept)."""
    from skimage.color import lab2rgb, rgb2lab

    lab = rgb2lab(np.asarray(img, dtype=np.float64) / 255.0)
    lab[..., 1] += da
    lab[..., 2] += db
    return Image.fromarray((lab2rgb(lab).clip(0, 1) * 255 + 0.5).astype(np.uint8), "RGB")


def test_an_image_is_at_zero_distance_from_itself():
    img = _texture()
    photo = _texture(seed=5).filter(ImageFilter.GaussianBlur(3))
    o = quality.second_opinion(img, photo, img.copy())
    assert o.colour == pytest.approx(0.0, abs=1e-9) and o.texture == pytest.approx(0.0, abs=1e-9)
    assert o.style2 == pytest.approx(0.0, abs=1e-9)
    # and the photo is, by construction, at 1
    assert quality.second_opinion(photo, photo, img).style2 == pytest.approx(1.0)


def test_colour_shift_moves_colour_blur_moves_texture():
    painting = _texture()
    photo = _texture(seed=5).filter(ImageFilter.GaussianBlur(3))
    shifted = quality.second_opinion(_shift_colour(painting, 15, -15), photo, painting)
    blurred = quality.second_opinion(painting.filter(ImageFilter.GaussianBlur(1.5)), photo, painting)
    assert shifted.colour > 2 * blurred.colour
    assert blurred.texture > 3 * shifted.texture
    assert shifted.colour > 5 and blurred.texture > 0.1


def test_deterministic_and_independent_of_call_order():
    painting, photo = _texture(), _texture(seed=5).filter(ImageFilter.GaussianBlur(3))
    out = _texture(seed=2)
    first = quality.second_opinion(out, photo, painting)
    quality._FEATURES.clear()
    quality.second_opinion(photo, out, painting)
    assert quality.second_opinion(out, photo, painting) == first


def test_painting_far_closer_than_photo_preview_in_between(shared_images):
    """All twelve pairs at 256 px: the painting (squeezed to the photo's shape) scores far
    closer than the photo, and Magenta's preview lands in between (RESULTS.md has the figures)."""
    from painterly import images as im
    from painterly.preview import preview

    photos = sorted(shared_images.glob("content_*.jpg"))
    paintings = sorted(shared_images.glob("style_*.jpg"))
    assert len(photos) * len(paintings) == 12
    load = {p: Image.open(p).convert("RGB") for p in photos + paintings}
    small = {p: im.resize_long_side(img, 384) for p, img in load.items()}  # keeps the test fast
    for c, s in itertools.product(photos, paintings):
        photo = im.resize_long_side(small[c], 256)
        painting = small[s].resize(photo.size, Image.Resampling.LANCZOS)
        cases = (("painting", painting), ("preview", preview(small[c], small[s], size=256)), ("photo", photo))
        at = {name: quality.second_opinion(img, small[c], small[s]) for name, img in cases}
        msg = f"{c.name} x {s.name}: " + ", ".join(f"{k} {v.style2:.2f}" for k, v in at.items())
        assert at["painting"].style2 < 0.5 * at["photo"].style2, msg
        assert at["painting"].style2 < at["preview"].style2 < at["photo"].style2, msg
        assert at["preview"].colour < at["photo"].colour, msg
