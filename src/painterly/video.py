"""stylize_video(): style transfer for a sequence of frames without flicker.

Ruder, Dosovitskiy & Brox (2016), "Artistic style transfer for videos": stylising each frame
on its own flickers, because every frame settles in a different local optimum. Instead each
frame starts from the previous stylised frame carried along the optical flow, and a temporal
loss keeps it there wherever the flow is reliable. Departures from the paper, and why:

- Flow is OpenCV's DIS (Kroeger et al. 2016), not DeepFlow/EpicFlow: it ships in a wheel and
  takes milliseconds a frame on a CPU, where DeepFlow needs a binary and seconds.
- The first frame of a shot starts from the instant preview (``init="preview"``, the
  default), later frames from the warped previous output at one scale with far fewer steps
  (``VideoConfig.steps_later``): the warm start is already most of the picture.
- Long-term consistency (frames i-2, i-4) is an option (``VideoConfig.long_term``), off.
- Re-anchoring (``VideoConfig.reanchor``, not in the paper): Ruder's check trusts a flow that
  is consistent with itself even where it does not explain the frame (a subject that turns,
  deforms or changes its shading). Carried there, strokes drift from the photo a little with
  every frame. So the photo each pixel's strokes were painted from is carried along with them,
  and where it no longer matches the frame, the temporal pull lets go and the frame starts
  from its own instant preview, as the first frame does.

Pure like ``stylize``: frames in, frames out; ``on_frame`` is how a caller keeps each frame
as it is made (the CLI writes it to a folder), and ``done`` resumes after those frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import cv2
import numpy as np
import torch
from PIL import Image

from .config import DEFAULT, StyleConfig, VideoConfig
from .losses import TemporalTarget
from .progress import Cancelled, Progress
from .stylize import Styles, stylize
from .videoio import frame_size as frame_size  # asked here by callers; torch-free in videoio

VIDEO_DEFAULT = VideoConfig()

# Ruder et al. (2016), section 3.2: a pixel's flow is unreliable (occluded) where the forward
# flow, followed back, does not return: |w~ + w|^2 > A (|w~|^2 + |w|^2) + B, and at motion
# boundaries: |grad u|^2 + |grad v|^2 > C |w|^2 + D (flow in pixels).
OCC_A, OCC_B = 0.01, 0.5
EDGE_C, EDGE_D = 0.01, 0.002


def to_array(img: Image.Image) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]."""
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def to_image(a: np.ndarray) -> Image.Image:
    return Image.fromarray((np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), "RGB")


def optical_flow(a: Image.Image, b: Image.Image) -> np.ndarray:
    """Dense flow from ``a`` to ``b``, (H, W, 2) float32 in pixels (dx, dy): a(p) ~ b(p + flow(p))."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)  # type: ignore[attr-defined]
    ga = np.asarray(a.convert("L"), dtype=np.uint8)
    gb = np.asarray(b.convert("L"), dtype=np.uint8)
    return dis.calc(ga, gb, None)


def warp(image: np.ndarray, flow: np.ndarray, *, cubic: bool = False) -> np.ndarray:
    """``image`` sampled at p + flow(p) for every p (bilinear, or bicubic; the border repeats).

    With ``flow`` from frame i to frame i-1 this carries frame i-1's picture onto frame i.
    """
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    how = cv2.INTER_CUBIC if cubic else cv2.INTER_LINEAR
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], how, borderMode=cv2.BORDER_REPLICATE)


def consistency(backward: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Ruder's per-pixel weight c on frame i: 1 where the flow can be trusted, 0 at occlusions
    (background uncovered by a moving object) and motion boundaries. (H, W) float32.

    Args:
        backward: flow from frame i to frame i-1.
        forward: flow from frame i-1 to frame i.
    """
    w = backward
    w_back = warp(forward, w)  # the forward flow where each pixel of frame i came from
    occluded = ((w_back + w) ** 2).sum(-1) > OCC_A * ((w_back**2).sum(-1) + (w**2).sum(-1)) + OCC_B
    du_y, du_x = np.gradient(w[..., 0])
    dv_y, dv_x = np.gradient(w[..., 1])
    edge = du_x**2 + du_y**2 + dv_x**2 + dv_y**2 > EDGE_C * (w**2).sum(-1) + EDGE_D
    return (~(occluded | edge)).astype(np.float32)


@dataclass(frozen=True)
class Link:
    """How frame i relates to frame i-1 (both input frames at the output size)."""

    backward: np.ndarray  # flow i -> i-1, (H, W, 2)
    weight: np.ndarray  # Ruder's c on frame i, (H, W)

    @classmethod
    def between(cls, prev: Image.Image, cur: Image.Image) -> Link:
        back = optical_flow(cur, prev)
        return cls(back, consistency(back, optical_flow(prev, cur)))

    @property
    def unreliable(self) -> float:
        """Fraction of frame i's pixels with no reliable flow from frame i-1."""
        return float(1.0 - self.weight.mean())

    def carry(self, prev_out: Image.Image) -> np.ndarray:
        """The previous stylised frame carried onto frame i, (H, W, 3) float32 in [0, 1].

        Bicubic: each frame is resampled from the last, and bilinear resampling compounds into
        blur. A stylised frame carried along the shared clip's flow for 15 frames kept 16 % of
        its Laplacian energy with bilinear, 80 % with bicubic (measured with this function).
        """
        return np.clip(warp(to_array(prev_out), self.backward, cubic=True), 0.0, 1.0)


def mismatch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel mean squared difference of two (H, W, 3) pictures in [0, 1], smoothed over a
    pixel or two (a single pixel's difference is mostly resampling noise), (H, W)."""
    return cv2.GaussianBlur(((a - b) ** 2).mean(-1), (0, 0), 1.0)


def reanchor(link: Link, source: np.ndarray, cur: np.ndarray, strength: float) -> tuple[np.ndarray, np.ndarray]:
    """How far frame i may trust what is carried from frame i-1, and the photo behind it.

    ``source`` is the photo that frame i-1's strokes were painted from, pixel by pixel (the
    frame itself where it was re-anchored, older frames carried along the flow elsewhere).
    Carried onto frame i and compared with it, a difference e (mean squared, pixels in [0, 1])
    scales Ruder's weight by exp(-strength * e). Comparing with the carried source rather than
    with frame i-1 alone also catches a drift too slow to show between two frames.

    Returns:
        (trust, source): trust (H, W) in [0, 1]; frame i's source, (H, W, 3).
    """
    carried = np.clip(warp(source, link.backward, cubic=True), 0.0, 1.0)
    trust = (link.weight * np.exp(-strength * mismatch(carried, cur))).astype(np.float32)
    return trust, _blend(carried, cur, trust)


def _blend(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``a`` where ``weight`` is 1, ``b`` where it is 0, (H, W, 3) float32."""
    return (b + (a - b) * weight[..., None]).astype(np.float32)


def warping_error(prev_out: Image.Image, cur_out: Image.Image, link: Link) -> float:
    """Temporal consistency of two consecutive outputs: the mean squared difference (pixels in
    [0, 1]) between frame i and frame i-1 warped onto it, over the pixels whose flow (from the
    input frames) is reliable. 0 = the outputs move exactly as the video does."""
    diff = ((to_array(cur_out) - link.carry(prev_out)) ** 2).mean(-1)
    total = float(link.weight.sum())
    return float((diff * link.weight).sum() / total) if total else 0.0


@dataclass(frozen=True)
class VideoProgress:
    """Where a video run is, as passed to ``stylize_video``'s ``on_progress``."""

    frame: int  # the frame being made (0-based index)
    frames: int  # frames in the clip
    done: int  # frames finished (including those given as ``done``)
    elapsed: float  # seconds since this call started
    frame_seconds: Optional[float]  # mean time of the frames made after the first of a shot (None yet)
    new_shot: bool  # the frame being made starts a shot (from the preview, the full steps)
    step: Optional[Progress] = None  # the current frame's step; None when a frame has just finished
    image: Optional[Image.Image] = field(default=None, compare=False)  # the frame just finished

    @property
    def eta(self) -> Optional[float]:
        return None if self.frame_seconds is None else self.frame_seconds * (self.frames - self.done)


VideoProgressCallback = Callable[[VideoProgress], None]


def later_config(config: StyleConfig, video: VideoConfig) -> StyleConfig:
    """The style options of a frame after the first of a shot (``VideoConfig.later_frames``)."""
    return video.later_frames(config)


def stylize_video(
    frames: Sequence[Image.Image],
    styles: Styles,
    config: StyleConfig = DEFAULT,
    video: VideoConfig = VIDEO_DEFAULT,
    *,
    on_progress: Optional[VideoProgressCallback] = None,
    on_frame: Optional[Callable[[int, Image.Image], object]] = None,
    done: Sequence[Image.Image] = (),
) -> list[Image.Image]:
    """Stylise a clip frame by frame, each frame kept consistent with the one before.

    Pure: takes and returns PIL images; prints nothing and touches no files.

    Args:
        frames: the clip's frames, in order (any size; they are sized like a picture with ``config``).
        styles: one painting or several (blended by ``config.style_blend``).
        config: the style options; the first frame of each shot runs them as a picture would.
        video: how frames are chained (temporal weight, steps of later frames, shot changes).
        on_progress: called after every optimisation step and after every frame; may raise
            Cancelled to stop (the frame being made is dropped: a resume makes it again).
        on_frame: called with (index, image) as each frame is finished, to keep it.
        done: stylised frames already made for this clip (a resume): the run continues at
            frame ``len(done)``, from ``done[-1]``.

    Returns:
        The stylised frames: all of them, or fewer if the callback raised Cancelled.
    """
    if not frames:
        raise ValueError("no frames to stylise")
    if len(done) > len(frames):
        raise ValueError(f"{len(done)} frames are done but the clip has only {len(frames)}")
    n_styles = 1 if isinstance(styles, Image.Image) else len(styles)
    size = frame_size(config, *frames[0].size, n_styles=n_styles)
    later = later_config(config, video)
    assert frame_size(later, *size) == size  # later frames are optimised at the output size

    def sized(img: Image.Image) -> Image.Image:
        return img.convert("RGB").resize(size, Image.Resampling.LANCZOS) if img.size != size else img.convert("RGB")

    outputs = [sized(d) for d in done]
    source = _replay(frames, len(outputs), sized, video)  # the photo behind outputs[-1] (reanchor)
    t0 = time.perf_counter()
    later_times: list[float] = []
    first_times: list[float] = []

    def tell(p: VideoProgress) -> None:
        if on_progress is not None:
            on_progress(p)

    def mean_time() -> Optional[float]:
        times = later_times or first_times
        return sum(times) / len(times) if times else None

    for i in range(len(outputs), len(frames)):
        cur = sized(frames[i])
        temporal = init = None
        new_shot = not outputs
        if outputs:
            link = Link.between(sized(frames[i - 1]), cur)
            new_shot = link.unreliable > video.shot_change
            if not new_shot:
                carried = link.carry(outputs[-1])
                trust = link.weight
                if video.reanchor:
                    assert source is not None
                    trust, source = reanchor(link, source, to_array(cur), video.reanchor)
                    init = to_image(_blend(carried, to_array(_fresh_start(cur, styles, config, size)), trust))
                else:
                    init = to_image(carried)
                if video.temporal_weight:
                    pulls = [(carried, trust)]
                    if video.long_term:  # where no nearer frame's flow reaches (its trust aside)
                        pulls += _long_term(frames, outputs, i, cur, sized, link.weight, video.shot_change)
                    temporal = _target(pulls, video.temporal_weight)
        cancelled = False
        t_frame = time.perf_counter()

        def on_step(p: Progress, i: int = i, new_shot: bool = new_shot) -> None:
            nonlocal cancelled
            try:
                tell(VideoProgress(i, len(frames), i, time.perf_counter() - t0, mean_time(), new_shot, step=p))
            except Cancelled:
                cancelled = True
                raise

        if new_shot:
            source = to_array(cur)
        cfg = config if new_shot else later
        out = stylize(cur, styles, cfg, on_progress=on_step, init_image=init, temporal=temporal)
        if cancelled:
            break
        (first_times if new_shot else later_times).append(time.perf_counter() - t_frame)
        outputs.append(out)
        if on_frame is not None:
            on_frame(i, out)
        try:
            tell(VideoProgress(i, len(frames), i + 1, time.perf_counter() - t0, mean_time(), new_shot, image=out))
        except Cancelled:
            break
    return outputs


def _replay(
    frames: Sequence[Image.Image], made: int, sized: Callable[[Image.Image], Image.Image], video: VideoConfig
) -> Optional[np.ndarray]:
    """The source (see ``reanchor``) of frame ``made - 1``, rebuilt from the input frames alone
    (from the start of its shot), so that a resumed run makes the same frames as an unbroken one.
    None when there is nothing to rebuild."""
    if not video.reanchor or made == 0:
        return None
    links: list[Link] = []
    first = made - 1
    while first > 0:
        link = Link.between(sized(frames[first - 1]), sized(frames[first]))
        if link.unreliable > video.shot_change:
            break
        links.append(link)
        first -= 1
    source = to_array(sized(frames[first]))
    for j, link in zip(range(first + 1, made), reversed(links)):
        _, source = reanchor(link, source, to_array(sized(frames[j])), video.reanchor)
    return source


def _fresh_start(cur: Image.Image, styles: Styles, config: StyleConfig, size: tuple[int, int]) -> Image.Image:
    """What frame ``cur`` would start from on its own, where nothing can be carried onto it:
    its instant preview (as the first frame, with ``init="preview"``), else the frame itself."""
    if config.init != "preview":
        return cur
    from .preview import preview  # lazy: onnxruntime is only needed here

    pv = preview(
        cur, styles, size=max(size), style_blend=config.style_blend, color=config.color,
        color_strength=config.color_strength,
    )  # fmt: skip
    return pv.resize(size, Image.Resampling.LANCZOS) if pv.size != size else pv


LONG_TERM = (2, 4)  # the earlier frames of Ruder et al.'s long-term loss, besides i-1


def _long_term(
    frames: Sequence[Image.Image],
    outputs: Sequence[Image.Image],
    i: int,
    cur: Image.Image,
    sized: Callable[[Image.Image], Image.Image],
    taken: np.ndarray,
    shot_change: float,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(carried, weight) pulls toward frames i-2 and i-4 (Ruder et al. 2016, eq. 8): each earlier
    frame's stylisation carried along the flow straight from it, weighted only where it is
    reliable and no nearer frame is, c_long(i-j) = max(c(i-j) - sum over nearer k of c(i-k), 0).

    An earlier frame across a shot change (too little reliable flow to it) is left out; judged
    from the flow alone, so a resumed run makes the same frames as an unbroken one.
    ``taken``: the previous frame's weight c(i-1) (already pulled toward).
    """
    pulls = []
    for j in LONG_TERM:
        if i - j < 0:
            break
        link = Link.between(sized(frames[i - j]), cur)
        if link.unreliable > shot_change:
            break
        weight = np.clip(link.weight - taken, 0.0, 1.0)
        taken = taken + link.weight
        if weight.any():
            pulls.append((link.carry(outputs[i - j]), weight))
    return pulls


def _target(pulls: Sequence[tuple[np.ndarray, np.ndarray]], strength: float) -> TemporalTarget:
    """The temporal loss toward one or more carried frames, as one target: a sum of weighted
    squared distances sum_j c_j (x - w_j)^2 is C (x - m)^2 plus a constant, with C = sum_j c_j
    and m the c-weighted mean of the w_j, so it has the same gradient."""
    total = np.sum([weight for _, weight in pulls], axis=0)
    mean = np.sum([img * weight[..., None] for img, weight in pulls], axis=0) / np.maximum(total, 1e-12)[..., None]
    mean = np.where(total[..., None] > 0, mean, pulls[0][0]).astype(np.float32)
    image = torch.from_numpy(np.ascontiguousarray(mean.transpose(2, 0, 1)))[None]  # (1, 3, H, W)
    return TemporalTarget(image, torch.from_numpy(np.asarray(total, dtype=np.float32))[None, None], strength)
