"""Pictures on the page: uploads checked and decoded once, thumbnails, downloads, the instant preview;
and video clips, checked once (``videoio.check_clip``, the job store's own check).

Decoding is cached by the bytes' SHA-256, so a rerun (every widget change) costs a hash, not
a decode; the cache holds only small working copies, never the full-size photo.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import streamlit as st
from PIL import Image, ImageOps

from .. import images as im
from .. import videoio as vio
from ..jobs import Job

WORK_SIDE = 1024  # long side of the copy the page works with (thumbnails, the preview)
THUMB_SIDE = 320
PREVIEW_SIDE = 384  # the preview network's native size (see painterly.preview)


@dataclass(frozen=True)
class Picture:
    """One chosen image: the bytes as given (the job store re-checks and re-encodes them)."""

    key: str  # sha256 of data
    data: bytes
    image: Image.Image  # working copy, long side <= WORK_SIDE
    size: tuple[int, int]  # the original's (width, height)
    name: str = ""  # the file's name as uploaded (for labels only; never a path here)


def check_upload(data: bytes, name: str) -> Picture:
    """Decode an upload, or raise ImageError with the one-line reason (size cap first)."""
    im.check_upload_size(data, name)
    key = hashlib.sha256(data).hexdigest()
    image, size = _decode(key, data, name)
    return Picture(key, data, image, size)


@st.cache_resource(max_entries=48, ttl=3600, show_spinner=False)
def _decode(key: str, _data: bytes, name: str) -> tuple[Image.Image, tuple[int, int]]:
    # Keyed by the hash (``_data`` is not hashed again). Errors are not cached: a bad file
    # fails fast at Pillow's header check, so re-raising on each rerun is cheap.
    img = im.load_image(_data, name=name)
    size = img.size
    if max(size) > WORK_SIDE:
        img = im.resize_long_side(img, WORK_SIDE)
    return img, size


@dataclass(frozen=True)
class Clip:
    """One chosen video clip: the bytes as given (the job store checks them again), what it is,
    and its first frame as the Picture the form previews and estimates with."""

    key: str  # sha256 of data
    data: bytes
    info: vio.VideoInfo
    poster: Picture  # the first frame (its size is the clip's)


def check_clip(data: bytes, name: str) -> Clip:
    """Check an uploaded clip all the way through, or raise VideoError/ImageError (one line)."""
    im.check_upload_size(data, "video")  # before hashing 50 MB on every rerun
    key = hashlib.sha256(data).hexdigest()
    info, first = _check_clip(key, data)
    return Clip(key, data, info, dataclasses.replace(_picture(first), name=name))


@st.cache_resource(max_entries=8, ttl=3600, show_spinner=False)
def _check_clip(key: str, _data: bytes) -> tuple[vio.VideoInfo, Image.Image]:
    # Keyed by the hash; the check decodes every frame (small), so a rerun must not repeat it.
    # Errors are not cached: a bad clip fails at ffmpeg's probe, which is quick.
    return vio.check_clip_bytes(_data, "video")


@st.cache_data(max_entries=16, show_spinner=False)
def file_bytes(path: str, mtime_ns: int) -> bytes:
    """A finished video's bytes for the player and the download; ``mtime_ns`` keys a rewrite."""
    return Path(path).read_bytes()


def mp4_download(job: Job, data: bytes, key: str) -> None:
    """The "Download MP4" button of a finished video (its page and its gallery entry)."""
    st.download_button(
        "Download MP4", data, f"painterly-{job.id[:8]}.mp4", "video/mp4", on_click="ignore", key=key, width="stretch"
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def job_pictures(data_dir: str, job_id: str) -> tuple[Picture, list[Picture]]:
    """A job's stored inputs as Pictures (for the job page and "tweak and run again")."""
    from .state import store

    content, styles = store().inputs(job_id)
    return _picture(content), [_picture(s) for s in styles]


def job_inputs(data_dir: Path, job_id: str) -> Optional[tuple[Picture, list[Picture]]]:
    """``job_pictures``, or None when they cannot be read (the job is gone, a file damaged):
    the pages then simply show no inputs."""
    try:
        return job_pictures(str(data_dir), job_id)
    except (im.ImageError, KeyError, OSError):
        return None


@st.cache_data(max_entries=512, show_spinner=False)
def input_thumbnails(data_dir: str, job_id: str, side: int = THUMB_SIDE) -> list[bytes]:
    """JPEG thumbnails of a job's photo and paintings (inputs never change), [] when unreadable."""
    inputs = job_inputs(Path(data_dir), job_id)
    if inputs is None:
        return []
    content, styles = inputs
    return [im.encode_image(thumbnail(p.image, side).convert("RGB"), "JPEG", quality=85) for p in (content, *styles)]


def _picture(img: Image.Image) -> Picture:
    data = im.encode_image(img, "PNG")
    work = im.resize_long_side(img, WORK_SIDE) if max(img.size) > WORK_SIDE else img
    return Picture(hashlib.sha256(data).hexdigest(), data, work, img.size)


def thumbnail(img: Image.Image, side: int = THUMB_SIDE) -> Image.Image:
    """A copy with the long side at most ``side`` (aspect kept)."""
    return im.resize_long_side(img, side) if max(img.size) > side else img


@st.cache_data(max_entries=256, show_spinner=False)
def jpeg(key: str, _img: Image.Image, side: int = THUMB_SIDE, fit: tuple[int, int] | None = None) -> bytes:
    """JPEG bytes of a thumbnail of ``_img`` (long side at most ``side``, or cropped to ``fit``),
    cached by ``key``, its content's hash: a rerun re-sends bytes instead of resizing and
    encoding the picture again (Streamlit encodes a PIL image on every ``st.image``)."""
    small = ImageOps.fit(_img, fit) if fit else thumbnail(_img, side)
    return im.encode_image(small.convert("RGB"), "JPEG", quality=85)


@st.cache_data(max_entries=64, show_spinner=False)
def before_after(
    data_dir: str,
    job_id: str,
    size: tuple[int, int],
    strength: float,
    blend: tuple[float, ...],
    color: str,
    color_strength: float,
) -> tuple[Optional[bytes], Optional[bytes], str]:
    """(the instant sketch, the photo, why there is no sketch): JPEGs at the finished picture's
    ``size``, made once per job (its inputs never change), for the result's comparison tabs."""
    inputs = job_inputs(Path(data_dir), job_id)
    if inputs is None:
        return None, None, ""
    content, styles = inputs
    photo = im.encode_image(content.image.convert("RGB").resize(size), "JPEG", quality=90)
    try:
        sketch = instant_preview(
            content.key,
            tuple(s.key for s in styles),
            strength,
            blend,
            color,
            color_strength,
            content.image,
            [s.image for s in styles],
        )
    except Exception as e:  # noqa: BLE001 -- the optional preview: the page says why instead
        return None, photo, type(e).__name__
    return im.encode_image(sketch.convert("RGB").resize(size), "JPEG", quality=90), photo, ""


@st.cache_data(max_entries=256, show_spinner=False)
def file_thumbnail(path: str, mtime_ns: int, side: int = THUMB_SIDE) -> bytes:
    """A JPEG thumbnail of an image file; ``mtime_ns`` makes a rewritten file a new entry."""
    with Image.open(path) as img:
        return im.encode_image(thumbnail(img.convert("RGB"), side), "JPEG", quality=85)


def jpeg_of(path: str) -> bytes:
    """The finished picture as a JPEG, for the download button: made when it is clicked (a
    print-size picture's JPEG is tens of megabytes: not kept for every page that shows it)."""
    with Image.open(path) as img:
        return im.encode_image(img.convert("RGB"), "JPEG", quality=92)


def mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(max_entries=64, show_spinner=False)
def instant_preview(
    content_key: str,
    style_keys: tuple[str, ...],
    strength: float,
    blend: tuple[float, ...],
    color: str,
    color_strength: float,
    _content: Image.Image,
    _styles: Sequence[Image.Image],
) -> Image.Image:
    """``painterly.preview.preview`` cached by the inputs' hashes and the settings."""
    from ..preview import preview

    return preview(
        _content,
        list(_styles),
        size=PREVIEW_SIDE,
        strength=strength,
        style_blend=blend,
        color=color,
        color_strength=color_strength,
    )
