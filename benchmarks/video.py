"""Video: temporal consistency, per-frame quality and time per frame (issue 11).

    python -m benchmarks --only video --size 256 [--video-frames 0:16]
    python -m benchmarks.video --size 256 --frames 0:16 --modes perframe,preview,video

Three ways to stylise the same consecutive frames of ../shared/video/big_buck_bunny_5s.mp4
with the starry night: (1) ``perframe``, each frame on its own with the default preset (as a
picture); (2) ``preview``, the instant preview per frame; (3) ``video``, ``stylize_video``.
Resumable: every frame is written to benchmarks/out/video/<size>/<mode>/ as it is made, with
its time, and a rerun continues where the last one stopped (a run can be split into pieces
of a few minutes on a shared machine).

- warping error: mean over consecutive pairs of ``painterly.video.warping_error``, the mean
  squared difference (pixels in [0, 1]) between output i and output i-1 warped onto it, over
  the pixels whose flow (DIS, from the *input* frames, forward-backward consistent) is reliable.
- style / content: ``quality.style_score`` against the painting, ``quality.content_score``
  (SSIM of luminance) against the input frame, averaged over the frames.
- seconds per frame, measured in this process around each frame (the VGG and preview
  networks loaded beforehand, so a frame's time is its work only).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image

from .report import write_block
from .runner import OUT, REPO, machine

CLIP = REPO.parent / "shared" / "video" / "big_buck_bunny_5s.mp4"
STYLE = REPO.parent / "shared" / "images" / "style_starry_night.jpg"
MODES = ("perframe", "preview", "video")
FAR = 4  # frames apart for the long-range warping error


def _frames(size: int, first: int, last: int) -> list[Image.Image]:
    from painterly.config import StyleConfig
    from painterly.video import frame_size
    from painterly.videoio import probe, read_frames

    info = probe(CLIP)
    fs = frame_size(StyleConfig(size=size), info.width, info.height)
    return read_frames(CLIP, fs, max_frames=last)[first:]


def _folder(size: int, first: int, last: int, mode: str) -> Path:
    return OUT / "video" / f"{size}_{first}-{last}" / mode


def run_mode(
    mode: str,
    size: int,
    first: int,
    last: int,
    budget: float = 1e9,
    temporal_weight: float = 0,
    steps_later: int = 0,
    long_term: bool = False,
) -> dict:
    """Make (or finish) one mode's frames; stop starting new frames after ``budget`` seconds.

    ``temporal_weight``, ``steps_later``, ``long_term`` (video mode): a weight, a step count or
    long-term consistency other than VideoConfig's default, kept in its own folder
    (video_tw<weight>, video_sl<steps>, video_lt)."""
    from painterly.config import StyleConfig, VideoConfig
    from painterly.images import load_image
    from painterly.preview import preview
    from painterly.stylize import Cancelled, stylize
    from painterly.video import stylize_video
    from painterly.videoio import finished_frames, save_frame

    vcfg = VideoConfig()
    suffix = ""
    if temporal_weight:
        vcfg, suffix = vcfg.replace(temporal_weight=temporal_weight), f"_tw{temporal_weight:g}"
    if steps_later:
        vcfg, suffix = vcfg.replace(steps_later=steps_later), suffix + f"_sl{steps_later}"
    if long_term:
        vcfg, suffix = vcfg.replace(long_term=True), suffix + "_lt"
    folder = _folder(size, first, last, mode + suffix)
    folder.mkdir(parents=True, exist_ok=True)
    times_file = folder / "times.json"
    times: dict[str, float] = json.loads(times_file.read_text()) if times_file.is_file() else {}
    frames = _frames(size, first, last)
    style = load_image(STYLE)
    cfg = StyleConfig(size=size)
    done = finished_frames(folder)[: len(frames)]
    t_start = time.perf_counter()
    preview(frames[0], style, size=size)  # load the networks outside the timed frames
    stylize(frames[0], style, cfg.replace(steps=1, init="content"))

    def keep(i: int, img: Image.Image, seconds: float) -> None:
        save_frame(img, folder, i)
        times[str(i)] = seconds
        times_file.write_text(json.dumps(times))

    if mode == "video":
        last_t = [time.perf_counter()]

        def on_frame(i: int, img: Image.Image) -> None:
            keep(i, img, time.perf_counter() - last_t[0])
            last_t[0] = time.perf_counter()

        def on_progress(p) -> None:
            if p.image is not None and time.perf_counter() - t_start > budget:
                raise Cancelled

        stylize_video(frames, style, cfg, vcfg, on_progress=on_progress, on_frame=on_frame, done=done)
    else:
        for i in range(len(done), len(frames)):
            if time.perf_counter() - t_start > budget:
                break
            t0 = time.perf_counter()
            out = preview(frames[i], style, size=size) if mode == "preview" else stylize(frames[i], style, cfg)
            keep(i, out, time.perf_counter() - t0)
    return {"done": len(finished_frames(folder)), "of": len(frames)}


def _farneback_link(prev: Image.Image, cur: Image.Image):
    """A Link from another flow method (Farnebäck 2003) than the engine's DIS: a second opinion
    on consistency that the video mode has not been optimised against."""
    import cv2
    import numpy as np

    from painterly.video import Link, consistency

    def flow(a: Image.Image, b: Image.Image) -> np.ndarray:
        ga, gb = (np.asarray(x.convert("L")) for x in (a, b))
        return cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 4, 15, 5, 5, 1.1, 0)

    back = flow(cur, prev)
    return Link(back, consistency(back, flow(prev, cur)))


def score(size: int, first: int, last: int) -> dict:
    """Scores of every mode whose frames are all made."""
    from painterly.images import load_image
    from painterly.video import Link, warping_error
    from painterly.videoio import finished_frames

    from .quality import content_score, style_score

    frames = _frames(size, first, last)
    links = [Link.between(frames[i - 1], frames[i]) for i in range(1, len(frames))]
    fb_links = [_farneback_link(frames[i - 1], frames[i]) for i in range(1, len(frames))]
    # Long-range consistency (what Ruder et al.'s long-term loss is for): frame i against frame
    # i-4 carried straight onto it, by the independent flow.
    far_links = {i: _farneback_link(frames[i - FAR], frames[i]) for i in range(FAR, len(frames))}
    style = load_image(STYLE)
    rows = {}
    extra = sorted(p.name for p in _folder(size, first, last, "").glob("video_*"))
    for mode in (*MODES, *extra):
        folder = _folder(size, first, last, mode)
        outs = finished_frames(folder)
        if len(outs) < len(frames):
            continue
        times = json.loads((folder / "times.json").read_text())
        t = [times[str(i)] for i in range(len(frames))]
        errs = [warping_error(outs[i - 1], outs[i], links[i - 1]) for i in range(1, len(frames))]
        fb_errs = [warping_error(outs[i - 1], outs[i], fb_links[i - 1]) for i in range(1, len(frames))]
        far_errs = [warping_error(outs[i - FAR], outs[i], link) for i, link in far_links.items()]
        styles = [style_score(o, style) for o in outs]
        contents = [content_score(o, f) for o, f in zip(outs, frames)]
        rows[mode] = {
            "warping_error": sum(errs) / len(errs),
            "warping_errors": errs,
            "warping_error_farneback": sum(fb_errs) / len(fb_errs),
            "warping_error_far": sum(far_errs) / len(far_errs) if far_errs else None,
            "style": sum(styles) / len(styles),
            "content": sum(contents) / len(contents),
            "style_min": min(styles),
            "content_min": min(contents),
            "first_s": t[0],
            "later_s": sum(t[1:]) / max(1, len(t) - 1),
        }
    unreliable = [lk.unreliable for lk in links]
    return {"size": size, "frames": [first, last], "rows": rows, "unreliable": sum(unreliable) / len(unreliable)}


def side_by_side(size: int, first: int, last: int, picks: tuple[int, ...], path: Path) -> Path:
    """Rows: input, per-frame default, video mode; columns: the picked frames."""
    from painterly.videoio import finished_frames

    frames = _frames(size, first, last)
    rows = [frames] + [finished_frames(_folder(size, first, last, m)) for m in ("perframe", "video")]
    w, h = frames[0].size
    sheet = Image.new("RGB", (w * len(picks), h * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, i in enumerate(picks):
            sheet.paste(row[i], (c * w, r * h))
    sheet.save(path)
    return path


def video_md(res: dict) -> str:
    m = res["machine"]
    first, last = res["frames"]
    lines = [
        f"### Video at {res['size']} px: frames {first + 1}-{last} of the shared clip",
        "",
        f"Scored {m['date']} (the frames timed as they were made, under the CPU lock) on {m['cpu']}, {m['cores']} cores, torch {m['torch']}. "
        f"Command: `{res['command']}`. Style: the starry night. {last - first} consecutive frames; "
        f"{100 * res['unreliable']:.1f} % of the pixels have no reliable flow on average (left out of the warping error).",
        "",
        "| mode | warping error (×1e-3), DIS flow | vs per-frame | same, Farnebäck flow | vs per-frame | "
        f"frames {FAR} apart, Farnebäck | vs per-frame | "
        "style score | content SSIM | first frame s | later frames s/frame |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = res["rows"].get("perframe")
    for mode, r in res["rows"].items():
        ratio = f"{r['warping_error'] / base['warping_error']:.3f}" if base else ""
        fb = r["warping_error_farneback"]
        fb_ratio = f"{fb / base['warping_error_farneback']:.3f}" if base else ""
        far, base_far = r.get("warping_error_far"), base.get("warping_error_far") if base else None
        far_cells = f"{1e3 * far:.3f} | " + (f"{far / base_far:.3f}" if base_far else "") if far is not None else " | "
        lines.append(
            f"| {mode} | {1e3 * r['warping_error']:.3f} | {ratio} | {1e3 * fb:.3f} | {fb_ratio} | {far_cells} | "
            f"{r['style']:.3f} | {r['content']:.3f} | {r['first_s']:.1f} | {r['later_s']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.video")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--frames", default="0:16", help="first:last (0-based, last excluded)")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--budget", type=float, default=480, help="seconds; no new frame starts after this")
    p.add_argument("--temporal-weight", type=float, default=0, help="video mode with another weight (own folder)")
    p.add_argument("--steps-later", type=int, default=0, help="video mode with other steps after the first frame")
    p.add_argument("--long-term", action="store_true", help="video mode with long-term consistency (own folder)")
    p.add_argument("--score", action="store_true", help="score the finished modes and print the table")
    args = p.parse_args(argv)
    first, last = (int(v) for v in args.frames.split(":"))
    if not args.score:
        for mode in args.modes.split(","):
            print(
                mode,
                run_mode(
                    mode, args.size, first, last, args.budget, args.temporal_weight, args.steps_later, args.long_term
                ),
                flush=True,
            )
        return 0
    res = score(args.size, first, last)
    res.update(machine=machine(), command=f"python -m benchmarks.video --size {args.size} --frames {args.frames}")
    (REPO / "benchmarks" / "results" / f"video_{args.size}.json").write_text(json.dumps(res, indent=1))
    md = video_md(res)
    write_block(REPO / "benchmarks" / "RESULTS.md", f"video-{args.size}", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
