"""Video in and out: probe and decode a clip (or a folder of frames), encode H.264 with the audio copied.

PyAV ships its own ffmpeg in the wheel, so any common container and codec decodes with no
system packages. Frames are RGB PIL images everywhere outside this module; odd pixel formats
(10-bit, yuv444, alpha) are converted by ffmpeg's scaler on the way in (alpha is dropped: a
video frame has nothing behind it to show through). Torch-free, like ``images``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Optional, Union

import av
import av.error
import numpy as np
from PIL import Image

from .config import StyleConfig
from .images import MAX_INPUT_PIXELS, SAVE_FORMATS, ImageError, check_upload_size, file_mode, load_image, save_image
from .plan import RunPlan

PathLike = Union[str, os.PathLike]

MAX_FRAMES = 1800  # a minute at 30 fps; at ~10 s a frame that is already five hours of work
MAX_SECONDS = 600.0  # longer sources are refused before decoding (cut them first)
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")  # what we write; anything ffmpeg reads is accepted in
FRAME_SUFFIXES = tuple(SAVE_FORMATS)
DEFAULT_FPS = Fraction(25)  # for a folder of frames written as a video
# The studio's clips: uploaded by anyone who can reach the page and run one at a time on this
# machine, so short. At ~3-5 s a frame at 256-512 px (README, "Video") 250 frames is 15-20 min.
# The upload itself is capped like a picture's (images.MAX_INPUT_BYTES).
CLIP_MAX_FRAMES = 250
CLIP_MAX_SECONDS = 20.0
CLIP_CHECK_SIDE = 64  # the studio decodes every frame this small to check a clip all the way through
# Frame times that stray more than this fraction of a frame from a constant rate mean a
# variable-frame-rate source, which a frame-by-frame method would play back wrongly.
VFR_TOLERANCE = 0.5


class VideoError(ValueError):
    """An input that is not a usable video (or an output that cannot be written); one line, actionable."""


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, read before any frame is decoded."""

    width: int
    height: int
    fps: Fraction
    frames: int  # frames in the file (counted when the container does not say)
    has_audio: bool
    pix_fmt: str  # the decoder's pixel format, e.g. yuv420p, yuv420p10le (converted to RGB on decode)
    source: Optional[Path]  # the file, for its audio; None for a folder of frames

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps) if self.fps else 0.0


def is_frame_folder(path: PathLike) -> bool:
    return Path(path).is_dir()


def _folder_frames(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and not p.name.startswith("."))


def _open(path: Path, label: object) -> av.container.InputContainer:
    if not path.exists():
        raise VideoError(f"{label}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise VideoError(f"{label}: the file is empty")
    try:
        return av.open(str(path), mode="r")
    except (av.error.InvalidDataError, av.error.FFmpegError) as e:
        raise VideoError(f"{label}: not a video ffmpeg can read ({e.strerror or e})") from None


def probe(
    path: PathLike,
    *,
    name: Optional[str] = None,
    max_frames: Optional[int] = None,
    max_seconds: Optional[float] = None,
) -> VideoInfo:
    """Check a clip (a video file or a folder of frames) and say what it is.

    Args:
        name: what messages call the clip (default: its path; the studio gives a word, never
            a server path).
        max_frames, max_seconds: the length limits (None: the command line's, ``MAX_FRAMES``
            and ``MAX_SECONDS``).

    Raises:
        VideoError: not a video, no video stream, no frames, too large or too long.
    """
    path = Path(path)
    label = name or path
    limits = (MAX_FRAMES if max_frames is None else max_frames, MAX_SECONDS if max_seconds is None else max_seconds)
    hint = " (or take the first N frames with --frames N)" if max_frames is None else ""
    if path.is_dir():
        files = _folder_frames(path)
        if not files:
            raise VideoError(f"{path}: the folder has no frames (.png, .jpg, .webp)")
        first = load_image(files[0], name="frame")
        _check_size(path, *first.size)
        _check_length(path, len(files), len(files) / float(DEFAULT_FPS), *limits, hint)
        return VideoInfo(first.width, first.height, DEFAULT_FPS, len(files), False, "rgb24", None)
    with _open(path, label) as c:
        if not c.streams.video:
            raise VideoError(f"{label}: no video stream (audio only?)")
        v = c.streams.video[0]
        w, h = v.codec_context.width, v.codec_context.height
        if not w or not h:
            raise VideoError(f"{label}: the video stream has no picture size (a damaged file?)")
        _check_size(label, w, h)
        fps = v.average_rate or v.guessed_rate
        if not fps or fps <= 0:
            raise VideoError(f"{label}: the video has no frame rate")
        seconds = float(v.duration * v.time_base) if v.duration and v.time_base else 0.0
        if not seconds and c.duration:
            seconds = c.duration / av.time_base
        _check_length(label, v.frames or round(seconds * float(fps)), seconds, *limits, hint)
        n = v.frames
        if not n:  # some containers do not say: count the packets (no decoding)
            n = sum(1 for p in c.demux(v) if p.size)
            _check_length(label, n, n / float(fps), *limits, hint)
        if n <= 0:
            raise VideoError(f"{label}: the video has no frames")
        return VideoInfo(w, h, Fraction(fps), n, bool(c.streams.audio), v.codec_context.pix_fmt or "?", path)


def _check_size(label: object, w: int, h: int) -> None:
    if w * h > MAX_INPUT_PIXELS:
        raise VideoError(
            f"{label}: {w}x{h} frames are {w * h / 1e6:.0f} megapixels, over the "
            f"{MAX_INPUT_PIXELS / 1e6:.0f} MP limit; scale the video down first"
        )


def _check_length(label: object, frames: int, seconds: float, max_frames: int, max_seconds: float, hint: str) -> None:
    if frames > max_frames or seconds > max_seconds:
        raise VideoError(
            f"{label}: {frames} frames ({seconds:.0f} s) is over the limit of {max_frames} frames or "
            f"{max_seconds:g} s; cut the clip first{hint}"
        )


def read_frames(
    path: PathLike,
    size: tuple[int, int],
    *,
    max_frames: Optional[int] = None,
    name: Optional[str] = None,
) -> list[Image.Image]:
    """Decode the clip's frames as RGB images of ``size`` (w, h), in order.

    ``name``: what messages call the clip (default: its path).

    Raises:
        VideoError: a corrupt stream, a variable frame rate, or no frames.
    """
    path = Path(path)
    label = name or path
    limit = max_frames if max_frames is not None else MAX_FRAMES
    if path.is_dir():
        files = _folder_frames(path)[:limit]
        frames = []
        for f in files:
            try:
                img = load_image(f, name="frame")
            except ImageError as e:
                raise VideoError(str(e)) from None
            frames.append(img.resize(size, Image.Resampling.LANCZOS) if img.size != size else img)
        return frames
    frames, times = [], []
    with _open(path, label) as c:
        if not c.streams.video:
            raise VideoError(f"{label}: no video stream (audio only?)")
        v = c.streams.video[0]
        v.thread_type = "AUTO"
        try:
            for frame in c.decode(v):
                # ffmpeg's scaler converts any pixel format (10-bit, yuv444, rgba...) to 8-bit RGB.
                rgb = frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA")
                frames.append(Image.fromarray(rgb.to_ndarray(), "RGB"))
                times.append(frame.time)
                if len(frames) >= limit:
                    break
        except (av.error.FFmpegError, ValueError) as e:
            raise VideoError(f"{label}: the video is damaged after frame {len(frames)} ({e})") from None
        fps = float(v.average_rate or v.guessed_rate or 0)
    if not frames:
        raise VideoError(f"{label}: no frame could be decoded (an empty or damaged video)")
    _check_constant_rate(label, times, fps)
    return frames


def _check_constant_rate(label: object, times: list, fps: float) -> None:
    known = [t for t in times if t is not None]
    if len(known) < 3 or not fps:
        return
    gaps = np.diff(np.asarray(known, dtype=np.float64)) * fps  # in frames; 1.0 for a constant rate
    if np.any(np.abs(gaps - 1.0) > VFR_TOLERANCE):
        raise VideoError(
            f"{label}: variable frame rate (frame gaps from {gaps.min():.2f} to {gaps.max():.2f} frames); "
            f"re-encode it at a constant rate first, e.g. ffmpeg -i IN -fps_mode cfr -r {fps:g} OUT.mp4"
        )


def check_clip(path: PathLike, name: str = "video") -> VideoInfo:
    """A studio clip, checked all the way through before it is queued: a video ffmpeg can read,
    with a video stream, within the short-clip limits (``CLIP_MAX_FRAMES``, ``CLIP_MAX_SECONDS``),
    every frame decodable and at a constant rate (decoded small, ``CLIP_CHECK_SIDE``).

    The one check for the studio's page and for the job store at its trust boundary.
    Messages name the clip ``name``, never the server's path.

    Raises:
        VideoError: one line saying what is wrong.
    """
    info = probe(path, name=name, max_frames=CLIP_MAX_FRAMES, max_seconds=CLIP_MAX_SECONDS)
    if info.frames < 2:  # ffmpeg reads a still picture as a one-frame video
        raise VideoError(f"{name}: a single picture, not a video; paint it as a photo instead")
    scale = CLIP_CHECK_SIDE / max(info.width, info.height)
    small = (max(2, round(info.width * scale)), max(2, round(info.height * scale)))
    read_frames(path, small, max_frames=CLIP_MAX_FRAMES, name=name)
    return info


def check_clip_bytes(data: Union[bytes, bytearray], name: str = "video") -> tuple[VideoInfo, Image.Image]:
    """``check_clip`` for uploaded bytes: the upload cap first (a picture's: ``images.check_upload_size``),
    then the clip, from a private temporary file that is gone when this returns.

    Returns:
        What the clip is, and its first frame at its own size (the page's thumbnail and preview).
    """
    check_upload_size(data, name)
    with tempfile.TemporaryDirectory(prefix="painterly-clip-") as folder:  # 0700
        path = Path(folder) / "clip"
        path.write_bytes(bytes(data))
        info = check_clip(path, name)
        return info, read_frames(path, (info.width, info.height), max_frames=1, name=name)[0]


def frame_size(config: StyleConfig, width: int, height: int, n_styles: Optional[int] = None) -> tuple[int, int]:
    """(w, h) of the output frames: the size a picture of the same shape would get.

    Here rather than in ``video`` so the studio and the job store ask it without loading torch.
    """
    return RunPlan.build(config, width, height, n_styles=n_styles).final_size


def check_output(path: PathLike) -> Path:
    """Refuse an output that cannot be written, before any long work: an .mp4/.mov file or a folder."""
    out = Path(path)
    if out.suffix.lower() in VIDEO_SUFFIXES:
        if not out.parent.is_dir():
            raise VideoError(f"{out}: the folder {out.parent} does not exist")
        if not os.access(out.parent, os.W_OK):
            raise VideoError(f"{out}: the folder {out.parent} is not writable")
        if out.is_dir():
            raise VideoError(f"{out} is a folder; give a file name such as {out / 'out.mp4'}")
        return out
    if out.suffix:
        raise VideoError(f"{out}: unsupported output type {out.suffix!r}; use .mp4 or .mov, or a folder for frames")
    if out.exists() and not out.is_dir():
        raise VideoError(f"{out} exists and is not a folder")
    if not out.parent.is_dir():
        raise VideoError(f"{out}: the folder {out.parent} does not exist")
    return out


def frame_name(index: int) -> str:
    """The file name of frame ``index`` (0-based) in a frames folder: 000001.png for the first."""
    return f"{index + 1:06d}.png"


def save_frame(img: Image.Image, folder: PathLike, index: int) -> Path:
    """Write one frame atomically (a reader sees it whole or not at all)."""
    return save_image(img, Path(folder) / frame_name(index))


def finished_frames(folder: PathLike) -> list[Image.Image]:
    """The frames already written to ``folder``, in order, up to the first missing or unreadable one."""
    out: list[Image.Image] = []
    folder = Path(folder)
    while (folder / frame_name(len(out))).is_file():
        try:
            out.append(load_image(folder / frame_name(len(out)), name="frame"))
        except ImageError:
            break
    return out


def write_video(
    frames: Iterable[Image.Image],
    out: PathLike,
    fps: Fraction,
    *,
    audio_from: Optional[PathLike] = None,
    crf: int = 18,
    private: bool = False,
) -> Path:
    """Encode ``frames`` as H.264 (yuv420p, playable everywhere) at ``fps`` into ``out``, atomically.

    The audio track of ``audio_from`` (if any) is copied unchanged, cut at the video's end.
    Odd widths or heights lose their last pixel row or column (yuv420p needs even sizes).
    Written to a temporary file beside ``out`` and renamed, so nothing partial is left there.
    ``private``: the file is 0600 (the job store's files), else the umask's mode.
    """
    out = Path(out)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with av.open(str(tmp), mode="w") as c:
            vs = c.add_stream("libx264", rate=fps)
            vs.pix_fmt = "yuv420p"
            vs.options = {"crf": str(crf), "preset": "medium"}
            a_in = a_out = None
            src = None
            if audio_from is not None:
                src = av.open(str(audio_from), mode="r")
                if src.streams.audio:
                    a_in = src.streams.audio[0]
                    a_out = c.add_stream_from_template(a_in)
            n = 0
            for img in frames:
                if n == 0:
                    vs.width, vs.height = img.width // 2 * 2, img.height // 2 * 2
                    if not vs.width or not vs.height:
                        raise VideoError(f"{out}: frames of {img.width}x{img.height} are too small to encode")
                a = np.asarray(img.convert("RGB"))[: vs.height, : vs.width]
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
                frame.pts = n
                frame.time_base = Fraction(1) / fps
                c.mux(vs.encode(frame))
                n += 1
            if n == 0:
                raise VideoError(f"{out}: no frames to write")
            c.mux(vs.encode(None))
            if src is not None and a_in is not None and a_out is not None:
                end = n / fps  # seconds of video
                for packet in src.demux(a_in):
                    if packet.dts is None:
                        continue
                    if packet.pts is not None and packet.time_base and packet.pts * packet.time_base >= end:
                        break
                    packet.stream = a_out
                    c.mux(packet)
            if src is not None:
                src.close()
        if not private:
            os.chmod(tmp, file_mode())  # mkstemp's 0600 is for the temporary name only
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def write_frames_folder(frames: Iterable[Image.Image], out: PathLike) -> Path:
    """Write frames as 000001.png ... into the folder ``out`` (created), each atomically."""
    out = Path(out)
    out.mkdir(exist_ok=True)
    for i, img in enumerate(frames):
        save_frame(img, out, i)
    return out
