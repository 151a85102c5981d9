"""Shared fixtures: tiny images made on the fly, and the dev image set when it is present."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from PIL import Image

SHARED_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "images"

# Ray (2.5x+) clusters ask for a token by default, and a driver joining one by its address sends
# it only with RAY_AUTH_MODE=token, read when Ray is imported: set it before any test imports Ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")


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


@pytest.fixture(scope="session")
def ray_head():
    """A real Ray cluster of this machine, two CPUs (``ray start --head``, ``batch.local_head``);
    yields its address. Skips without Ray, unless PAINTERLY_REQUIRE_RAY is set (CI): then fails."""
    try:
        import ray
    except ImportError:
        if os.environ.get("PAINTERLY_REQUIRE_RAY"):
            pytest.fail("Ray is not installed, and PAINTERLY_REQUIRE_RAY is set")
        pytest.skip("Ray is optional: pip install 'painterly[ray]'")
    from painterly.batch import local_head

    src = str(Path(__file__).resolve().parents[1] / "src")  # the workers import this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
    with local_head(2, env=env) as address:
        try:
            yield address
        finally:
            if ray.is_initialized():
                ray.shutdown()


@pytest.fixture
def free_port() -> int:
    """A localhost port nobody listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def wait_serving() -> Callable[[str, subprocess.Popen, Path], None]:
    """wait(url, proc, log): until the Streamlit server at ``url`` answers its health check; fails
    with the server's log if the process ends or a minute passes first."""

    def wait(url: str, proc: subprocess.Popen, log: Path) -> None:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(url + "_stcore/health", timeout=2).read() == b"ok":
                    return
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the studio did not start:\n" + log.read_text())
            time.sleep(0.3)

    return wait
