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


def _lines_photo(lines: bool = True, w: int = 128, h: int = 96) -> Image.Image:
    """A synthetic photo: a smooth gradient with a big dark square (edges, not thin), and, with
    ``lines``, thin dark lines one and two pixels wide and a word of small text."""
    from PIL import ImageDraw

    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 0.35 + 0.4 * xx / w + 0.15 * yy / h
    img = Image.fromarray((np.stack([base, base * 0.9, base * 0.8], -1) * 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    d.rectangle((8, 50, 40, 86), fill=(40, 40, 50))
    if lines:
        for i, x in enumerate(range(56, 120, 12)):
            d.line((x, 6, x + 10, 90), fill=(20, 20, 20), width=1 + i % 2)
        d.line((4, 20, 50, 34), fill=(240, 240, 230), width=1)
        d.text((6, 2), "thin", fill=(10, 10, 10))
    return img


def test_thin_mask_finds_lines_not_the_edges_of_large_shapes():
    photo = _lines_photo()
    mask = quality.thin_mask(np.asarray(photo.convert("L"), dtype=np.float32) / 255.0)
    assert mask[6:90, 56:124].mean() > 0.15  # the lines' band
    # the square's sides (x = 8 and 40, y = 50..86), away from the lines: a step edge is not thin
    assert mask[55:82, 5:12].mean() < 0.02 and mask[55:82, 37:44].mean() < 0.02
    assert not quality.thin_mask(np.full((40, 40), 0.5, np.float32)).any()


def test_thin_structure_falls_as_the_lines_fade_and_is_near_zero_without_them():
    photo = _lines_photo()
    assert quality.thin_structure(photo, photo) == pytest.approx(1.0, abs=1e-6)
    blur1 = quality.thin_structure(photo.filter(ImageFilter.GaussianBlur(1)), photo)
    blur2 = quality.thin_structure(photo.filter(ImageFilter.GaussianBlur(2)), photo)
    gone = quality.thin_structure(_lines_photo(lines=False), photo)
    assert 1.0 > blur1 + 0.05 and blur1 > blur2 + 0.1, (blur1, blur2)
    assert abs(gone) < 0.2, gone
    # colours do not matter, only the luminance's line work; a photo with no thin structure has no score
    assert quality.thin_structure(_shift_colour(photo, 20, -20), photo) > 0.9
    flat = Image.new("RGB", (64, 48), (120, 130, 140))
    assert np.isnan(quality.thin_structure(flat, flat))


def test_thin_structure_of_the_shared_photos_at_256_px(shared_images):
    """On the dev photos at 256 px: the photo 1, a 1 px blur lower, a painting near 0."""
    from painterly import images as im

    painting = Image.open(shared_images / "style_starry_night.jpg").convert("RGB")
    for name in ("astronaut", "chelsea", "coffee"):
        photo = im.resize_long_side(Image.open(shared_images / f"content_{name}.jpg").convert("RGB"), 256)
        blurred = quality.thin_structure(photo.filter(ImageFilter.GaussianBlur(1)), photo)
        other = quality.thin_structure(painting.resize(photo.size, Image.Resampling.LANCZOS), photo)
        assert 0.5 < blurred < 0.95 and abs(other) < 0.15, (name, blurred, other)
