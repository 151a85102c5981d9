"""Images in and out: safe loading, sizing, colour helpers, atomic saving.

Everything here works on PIL images and numpy arrays and never imports torch at module
level, so the instant preview and the CLI start fast. Inside the engine, images are RGB
float tensors in [0, 1] with shape (1, 3, H, W); ``to_tensor``/``to_image`` convert.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Callable, Optional, Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image]

# A decoded image above this many pixels is refused: it is almost surely a decompression
# bomb or a mistake, and 64 MP of float32 RGB is already 768 MB before any VGG activations.
MAX_INPUT_PIXELS = 64_000_000
MAX_INPUT_BYTES = 50 * 1024 * 1024  # the cap on one upload (the studio's and the job store's)
UPLOAD_MB = MAX_INPUT_BYTES // 2**20  # the same cap in MB, for Streamlit's settings and help texts

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
DEPTH16_FORMATS = ("PNG", "TIFF")  # the formats save_image writes 16 bits per channel in


class ImageError(ValueError):
    """An input that is not a usable image; the message says what is wrong and what to do."""


def load_image(source: ImageSource, *, name: str = "image", max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Open an image from a path, bytes, a file object or a PIL image, as 8-bit RGB.

    EXIF orientation is applied; CMYK, 16-bit, greyscale and palette images are converted;
    transparency is composited onto white (a painting has no alpha). Raises ImageError with
    a one-line, actionable message for anything else.

    Args:
        source: path, raw bytes, binary file object, or an already-open PIL image.
        name: how to call the image in error messages (e.g. "content image").
        max_pixels: refuse images with more pixels than this (decompression bombs).
    """
    if isinstance(source, Image.Image):
        img = source
        img.load()
    else:
        label = f"{name} {os.fspath(source)!s}" if isinstance(source, (str, os.PathLike)) else name
        try:
            if isinstance(source, (str, os.PathLike)):
                path = Path(source)
                if not path.is_file():
                    if path.is_dir():
                        raise ImageError(f"{label}: a folder, not an image file")
                    if path.exists():
                        raise ImageError(f"{label}: not a regular file (a device or a pipe); give an image file")
                    raise ImageError(f"{label}: no such file")
                if path.stat().st_size == 0:
                    raise ImageError(f"{label}: the file is empty")
                fp: BinaryIO = open(path, "rb")
            elif isinstance(source, (bytes, bytearray)):
                if not source:
                    raise ImageError(f"{label}: the upload is empty")
                fp = io.BytesIO(source)
            else:
                fp = source
            # Close only what we opened; a caller's file object stays theirs.
            owned = fp is not source
            with fp if owned else contextlib.nullcontext(fp), warnings.catch_warnings():
                # Pillow warns, then raises, on bombs; we check the size ourselves below.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(fp)
                w, h = img.size
                if w <= 0 or h <= 0:
                    raise ImageError(f"{label}: the image has zero size ({w}x{h})")
                if w * h > max_pixels:
                    raise ImageError(
                        f"{label}: {w}x{h} is {w * h / 1e6:.0f} megapixels, over the "
                        f"{max_pixels / 1e6:.0f} MP limit; scale it down first"
                    )
                # Truncated files must fail loudly, not come back half grey.
                ImageFile.LOAD_TRUNCATED_IMAGES = False
                img.load()
        except ImageError:
            raise
        except PermissionError:
            raise ImageError(f"{label}: cannot read it (permission denied)") from None
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image Pillow can read (try PNG, JPEG or WebP)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{label}: the image is too large to open safely; scale it down first") from None
        except (OSError, SyntaxError, ValueError) as e:
            raise ImageError(f"{label}: the file is damaged or truncated ({e})") from None
    return _to_rgb(ImageOps.exif_transpose(img))


def check_upload_size(data: Union[bytes, bytearray], name: str) -> None:
    """Refuse an upload over the cap, before any decoding: the one check and message for it."""
    if len(data) > MAX_INPUT_BYTES:
        raise ImageError(
            f"{name}: {len(data) / 2**20:.0f} MB is over the {MAX_INPUT_BYTES / 2**20:.0f} MB limit, the upload "
            "limit per file; use a smaller file"
        )


def _to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB from any mode Pillow decodes."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16/32-bit greyscale: scale the actual range to 0..255 rather than clipping at 255.
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or a.max() > 255 else 255.0
        img = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        top = 1.0 if a.max() <= 1.0 else 255.0
        img = Image.fromarray(np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, L, 1, ...
    return img


def fit_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w, h) with the long side equal to long_side and the aspect ratio kept (each >= 1)."""
    scale = long_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Resize so the long side is long_side px (LANCZOS when shrinking, BICUBIC when growing)."""
    return resize_to(img, fit_size(*img.size, long_side))


def resize_to(img: Image.Image, size: tuple[int, int], *, reducing_gap: Optional[float] = None) -> Image.Image:
    """Resize to ``size`` (w, h): LANCZOS when shrinking, BICUBIC when growing.

    ``reducing_gap`` (shrinking only): a fast box reduction first, then Lanczos (big photos).
    """
    if size == img.size:
        return img
    if size[0] > img.size[0]:
        return img.resize(size, Image.Resampling.BICUBIC)
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=reducing_gap)


@dataclass(frozen=True)
class PrintInfo:
    """What a print carries over from the photo: its ICC profile (RGB ones only) and resolution."""

    icc: Optional[bytes] = None
    dpi: Optional[tuple[float, float]] = None


def print_info(source: ImageSource) -> PrintInfo:
    """The photo's RGB ICC profile and DPI, read from its header (no pixels decoded).

    A CMYK or grey profile is dropped: the result is RGB, and such a profile would misdescribe it.
    """
    try:
        with contextlib.ExitStack() as stack:
            img = source if isinstance(source, Image.Image) else stack.enter_context(Image.open(_as_file(source)))
            icc = img.info.get("icc_profile") or None
            dpi = img.info.get("dpi")
    except (OSError, ValueError):
        return PrintInfo()
    if icc is not None and icc[16:20] != b"RGB ":  # ICC header: the data colour space at bytes 16-19
        icc = None
    if dpi is None or len(dpi) != 2 or not all(float(v) > 0 for v in dpi):
        return PrintInfo(icc)
    return PrintInfo(icc, (float(dpi[0]), float(dpi[1])))


def _as_file(source: ImageSource) -> Union[str, os.PathLike, BinaryIO]:
    return io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source  # type: ignore[return-value]


def save_image(
    img: Union[Image.Image, np.ndarray],
    path: Union[str, os.PathLike],
    *,
    quality: int = 95,
    info: PrintInfo = PrintInfo(),
) -> Path:
    """Write atomically (temporary file in the same folder, then rename); format from the extension.

    ``img`` is a PIL image, or a (H, W, 3) uint16 array (16 bits per channel: .png or .tif). The
    encoder writes straight to the file: no second full-size copy in memory. ``info``: an ICC
    profile and DPI to embed (from ``print_info`` of the photo).
    """
    path = Path(path)
    fmt = SAVE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(f"{path}: unsupported output type {path.suffix or '(none)'!r}; use {', '.join(SAVE_FORMATS)}")
    if not path.parent.is_dir():
        raise ImageError(f"{path}: the folder {path.parent} does not exist")
    if isinstance(img, np.ndarray):
        if fmt not in DEPTH16_FORMATS:
            raise ImageError(f"{path}: 16-bit output is written as .png or .tif, not {path.suffix}")
        array = img
        return write_atomic(path, lambda f: (_write_png16 if fmt == "PNG" else _write_tiff16)(f, array, info))
    return write_atomic(path, lambda f: _save_pil(img, f, fmt, quality, info))


def _save_pil(img: Image.Image, f: BinaryIO, fmt: str, quality: int, info: PrintInfo) -> None:
    kwargs: dict = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    if fmt == "TIFF":
        kwargs["compression"] = "tiff_deflate"
    if info.icc:
        kwargs["icc_profile"] = info.icc
    if info.dpi and fmt != "WEBP":
        kwargs["dpi"] = info.dpi
    (img if img.mode == "RGB" else img.convert("RGB")).save(f, format=fmt, **kwargs)


def _write_png16(f: BinaryIO, a: np.ndarray, info: PrintInfo) -> None:
    """A 16-bit RGB PNG, a band of rows at a time (Pillow writes 16 bits only for grey images)."""

    def chunk(tag: bytes, data: bytes) -> None:
        f.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    h, w, _ = a.shape
    f.write(b"\x89PNG\r\n\x1a\n")
    chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))  # 16 bits, truecolour
    if info.icc:
        chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(info.icc))
    if info.dpi:
        chunk(b"pHYs", struct.pack(">IIB", round(info.dpi[0] / 0.0254), round(info.dpi[1] / 0.0254), 1))
    z = zlib.compressobj(6)
    for r in range(0, h, ROWS):
        band = a[r : r + ROWS].astype(">u2")
        rows = np.zeros((band.shape[0], 1 + 6 * w), np.uint8)  # filter byte 0 (none), then the row
        rows[:, 1:] = band.reshape(band.shape[0], -1).view(np.uint8)
        data = z.compress(rows.tobytes())
        if data:
            chunk(b"IDAT", data)
    chunk(b"IDAT", z.flush())
    chunk(b"IEND", b"")


def _write_tiff16(f: BinaryIO, a: np.ndarray, info: PrintInfo) -> None:
    import tifffile

    extra: dict = {"resolution": info.dpi, "resolutionunit": "INCH"} if info.dpi else {}
    tifffile.imwrite(f, a, photometric="rgb", compression="zlib", iccprofile=info.icc, **extra)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once, at import: os.umask can only be read by setting it


def file_mode() -> int:
    """The mode ``open()`` gives a new file (0666 less the umask), for files made under a
    temporary name (``mkstemp`` makes them 0600) and renamed into place."""
    return 0o666 & ~_UMASK


def write_atomic(
    path: Union[str, os.PathLike], data: Union[bytes, Callable[[BinaryIO], object]], *, private: bool = False
) -> Path:
    """Write bytes (or what ``data(file)`` writes) so readers see the old file or the new one,
    never half of one.

    A temporary file in the same folder is written and fsynced, then renamed over ``path``
    (``os.replace`` is atomic on POSIX and Windows within one file system). ``private``: the
    file is readable by its owner only (0600) whatever the umask; else it gets the mode
    ``open()`` would give it.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.close(fd)
        with open(tmp, "wb") as f:  # by name: a writer may ask f.name (tifffile does)
            # mkstemp makes the file private (0600) already.
            if not private:
                os.chmod(tmp, file_mode())
            if isinstance(data, (bytes, bytearray)):
                f.write(data)
            else:
                data(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def encode_image(img: Image.Image, fmt: str = "PNG", *, quality: int = 95) -> bytes:
    """Encode to bytes (PNG, JPEG or WEBP) for downloads and atomic writes."""
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    img.convert("RGB").save(buf, format=fmt, **kwargs)
    return buf.getvalue()


# --- colour -------------------------------------------------------------------------------
# Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural Artistic Style Transfer"
# (2016) give two methods; both are implemented here on numpy so the preview can use them.

_RGB2YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = np.linalg.inv(_RGB2YIQ)


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0


def _img(a: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8), "RGB")


def luminance_transfer(result: Image.Image, content: Image.Image, strength: float = 1.0) -> Image.Image:
    """Keep the result's luminance (Y) and take the colour (I, Q) from the content photo.

    The paper's "luminance-only transfer": style acts on brightness, the photo keeps its
    colours. ``strength`` blends between the plain result (0) and full colour keeping (1).
    """
    if strength <= 0:
        return result
    out = np.array(result.convert("RGB"))
    keep_colours(out, content, strength)
    return Image.fromarray(out, "RGB")


def keep_colours(result: np.ndarray, content: Image.Image, strength: float = 1.0) -> None:
    """luminance_transfer in place on a (H, W, 3) uint8 or uint16 array, ROWS rows at a time (for
    prints: float64 copies of a whole 8192 px picture would take several GB)."""
    top = float(np.iinfo(result.dtype).max)
    con_all = content.convert("RGB").resize((result.shape[1], result.shape[0]), Image.Resampling.BICUBIC)
    for r in range(0, result.shape[0], ROWS):
        res = result[r : r + ROWS].astype(np.float64) / top
        con = np.asarray(con_all.crop((0, r, con_all.width, min(r + ROWS, con_all.height))), np.float64) / 255.0
        yiq_r, yiq_c = res @ _RGB2YIQ.T, con @ _RGB2YIQ.T
        mixed = np.concatenate([yiq_r[..., :1], yiq_c[..., 1:]], axis=-1) @ _YIQ2RGB.T
        band = (1 - strength) * res + strength * mixed
        result[r : r + ROWS] = np.clip(band * top + 0.5, 0, top).astype(result.dtype)


def _luma(a: np.ndarray) -> np.ndarray:
    return a @ _RGB2YIQ[0]


def _grey(y: np.ndarray) -> Image.Image:
    """Luminance (h, w) in [0, 1] -> a grey RGB image (the VGG reads three channels)."""
    return _img(np.repeat(y[..., None], 3, axis=-1))


def luminance_only(img: Image.Image) -> Image.Image:
    """The image's luminance Y as a grey RGB image (what the VGG reads in luminance-only transfer)."""
    return _grey(_luma(_arr(img)))


def match_luminance(style: Image.Image, content: Image.Image, strength: float = 1.0) -> Image.Image:
    """The painting's luminance, as grey RGB, with its mean and spread moved to the photo's.

    Gatys et al. (2016), "Preserving colour in neural artistic style transfer": before a
    luminance-only transfer, the style's luminance is matched to the content's
    (Y_s' = sigma_c / sigma_s * (Y_s - mu_s) + mu_c), so that a dark photo stays dark and a
    pale one pale. ``strength`` 0..1 blends from the painting's own luminance to the match.
    """
    ys, yc = _luma(_arr(style)), _luma(_arr(content))
    matched = (ys - ys.mean()) * (yc.std() / max(float(ys.std()), 1e-6)) + yc.mean()
    return _grey((1 - strength) * ys + strength * matched)


def match_color(style: Image.Image, content: Image.Image, strength: float = 1.0) -> Image.Image:
    """Recolour ``style`` so its RGB mean and covariance match ``content``'s.

    The paper's "colour histogram matching" (linear, via matrix square roots of the
    covariances): run before the transfer, the result takes the photo's palette.
    """
    if strength <= 0:
        return style
    s = _arr(style).reshape(-1, 3)
    c = _arr(content).reshape(-1, 3)
    mu_s, mu_c = s.mean(0), c.mean(0)
    cov_s = np.cov(s, rowvar=False) + 1e-5 * np.eye(3)
    cov_c = np.cov(c, rowvar=False) + 1e-5 * np.eye(3)
    a = _sqrtm(cov_c) @ np.linalg.inv(_sqrtm(cov_s))
    out = (s - mu_s) @ a.T + mu_c
    out = (1 - strength) * s + strength * out
    return _img(out.reshape(style.size[1], style.size[0], 3))


def _sqrtm(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


# --- tensors (torch imported lazily) -------------------------------------------------------


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB -> float tensor (1, 3, H, W) in [0, 1]."""
    import torch

    a = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(a.copy()).permute(2, 0, 1).unsqueeze(0).contiguous()


def to_image(t: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W), any range -> PIL RGB (clamped to [0, 1])."""
    return Image.fromarray(to_array(t, 8), "RGB")


ROWS = 256  # rows converted at a time: a print is never copied whole in float


def to_array(t: torch.Tensor, depth: int = 8) -> np.ndarray:
    """Float tensor (1, 3, H, W) or (3, H, W), any range -> (H, W, 3) uint8 or uint16 (depth 16),
    clamped to [0, 1]; a band of ROWS rows at a time, so the only full-size copy is the result."""
    if t.dim() == 4:
        t = t[0]
    top, kind = (255, np.uint8) if depth == 8 else (65535, np.uint16)
    h, w = t.shape[-2:]
    out = np.empty((h, w, 3), kind)
    for r in range(0, h, ROWS):
        band = t[:, r : r + ROWS].detach().float().clamp(0, 1).mul(top).add(0.5).to("cpu")
        out[r : r + ROWS] = band.permute(1, 2, 0).numpy().astype(kind)
    return out
