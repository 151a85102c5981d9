"""Shared fixtures: tiny images made on the fly, and the dev image set when it is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"


def _gradient(w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = xx / max(w - 1, 1)
    g = yy / max(h - 1, 1)
    b = 0.5 + 0.5 * np.sin(xx / 3.0 + seed) * np.cos(yy / 4.0)
    a = np.stack([r, g, b], -1) * 0.8 + 0.2 * rng.random((h, w, 3))
    return Image.fromarray((a.clip(0, 1) * 255).astype(np.uint8), "RGB")


@pytest.fixture
def content_img() -> Image.Image:
    """A small smooth 'photo': 48x32."""
    return _gradient(48, 32, 0)


@pytest.fixture
def style_img() -> Image.Image:
    """A small busy 'painting': stripes and noise, 40x40."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:40, 0:40]
    stripes = ((xx + yy) // 4 % 2).astype(np.float32)
    a = np.stack([stripes, 1 - stripes, rng.random((40, 40))], -1)
    return Image.fromarray((a * 255).astype(np.uint8), "RGB")


@pytest.fixture
def shared_images() -> Path:
    """../shared/images, or skip when the dev image set is absent."""
    if not (SHARED_IMAGES / "content_chelsea.jpg").is_file():
        pytest.skip("dev images (../shared/images) not present")
    return SHARED_IMAGES


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch on one thread for a module's tests: the test machine may be shared, and one thread
    beats two fighting over busy cores. torch is imported here, not at the top, so that tests
    checking that the preview path never imports torch stay meaningful."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
