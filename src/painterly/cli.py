"""The `painterly` command: a thin layer that gathers options, calls the engine and reports.

    painterly stylize photo.jpg painting.jpg -o out.png --size 512
    painterly video clip.mp4 painting.jpg -o out.mp4 --size 512
    painterly presets
    painterly preview photo.jpg painting.jpg -o quick.png
    painterly app | painterly worker

Every option of ``painterly stylize`` is generated from ``StyleConfig``'s fields, so an option
added there appears here with its help text. Only flags the user gives override the chosen
``--preset``. Errors are one line on stderr and a non-zero status, never a traceback;
``main`` returns the status and only ``__main__`` exits (httpie's ``main(args) -> ExitStatus``).

Module-level imports stay light (argparse, config, images): ``painterly preview`` and
``painterly presets`` must start without paying for torch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Optional, Sequence

from PIL import Image

from . import __version__
from .batch.plan import DEFAULT_TEMPLATE
from .config import (
    PRESET_HELP,
    PRESETS,
    ConfigError,
    StyleConfig,
    VideoConfig,
    fields,
    preset,
    preset_diff,
    video_fields,
)
from .errors import one_line
from .flags import add_config_flag, as_flag, config_field, flag_message
from .images import DEPTH16_FORMATS, SAVE_FORMATS, ImageError, load_image, print_info, save_image, write_atomic
from .plan import PlanError, RunPlan
from .reporter import ProgressReporter, VideoReporter

if TYPE_CHECKING:
    from .progress import Progress

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """The command line itself is wrong (exit status 2)."""


class CliError(Exception):
    """Something the user can fix went wrong (exit status 1)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions, so ``main`` can print them as one line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --- the parser -----------------------------------------------------------------------------


def make_parser() -> argparse.ArgumentParser:
    """The whole command line: ``painterly {stylize,presets,preview,app,worker}``."""
    parser = _Parser(
        prog="painterly",
        description="Neural style transfer (Gatys et al. 2015): repaint a photo in the style of a painting.",
    )
    parser.add_argument("--version", action="version", version=f"painterly {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    # stylize --------------------------------------------------------------------------------
    p = sub.add_parser(
        "stylize",
        help="repaint a photo in the style of one or more paintings (the full optimisation)",
        description="Repaint CONTENT in the style of STYLE (several styles are blended). "
        "Options default to the chosen --preset; only the flags you give override it. "
        "Ctrl-C stops the run and saves the best image so far.",
    )
    p.add_argument("content", metavar="CONTENT", help="the photo")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    p.add_argument(
        "-o", "--output", metavar="OUT", required=True, help="output image (.png, .jpg, .jpeg, .webp, .tif or .tiff)"
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print the run plan (scales, whole or block mode, block size, predicted peak memory, and the "
        "time after timing a few small steps on this machine) and run nothing else",
    )
    p.add_argument(
        "--depth",
        type=int,
        choices=(8, 16),
        default=8,
        help="bits per channel of the output: 16 for print work (.png or .tif only) [default: 8]",
    )
    p.add_argument(
        "--preset",
        default="default",
        choices=tuple(PRESETS),
        help="starting values for every option [default: default]",
    )
    p.add_argument("--init-image", metavar="PATH", help="start from this image (implies --init image)")
    p.add_argument(
        "--save-every",
        metavar="N",
        type=int,
        default=0,
        help="every N steps save a snapshot OUT-stem_000N.ext next to OUT, print the loss "
        "and append it to OUT-stem.loss.tsv",
    )
    _add_style_flags(p)
    p.set_defaults(func=cmd_stylize)

    # video ------------------------------------------------------------------------------------
    p = sub.add_parser(
        "video",
        help="repaint a video (or a folder of frames) without flicker, frame by frame, resumable",
        description="Repaint the video IN in the style of STYLE, each frame kept consistent with the one "
        "before along the optical flow (Ruder et al. 2016). Finished frames are kept as they are made; "
        "Ctrl-C stops, and the same command run again resumes at the first unfinished frame.",
    )
    p.add_argument("input", metavar="IN", help="the video (any common format) or a folder of frames")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="output .mp4 or .mov, or a folder for frames")
    p.add_argument("--preset", default="default", choices=tuple(PRESETS), help="starting values [default: default]")
    p.add_argument("--frames", type=int, default=0, metavar="N", help="only the first N frames (0 = all)")
    p.add_argument("--fps", type=float, default=0.0, help="frame rate of a video made from a folder [default: 25]")
    p.add_argument(
        "--keep-frames", action="store_true", help="keep the folder of finished frames after the video is written"
    )
    p.set_defaults(func=cmd_video, init_image=None, save_every=0)
    g = p.add_argument_group("video options")
    for f in video_fields():
        add_config_flag(g, f, shown=f.default)
    _add_style_flags(p)  # they set each shot's first frame; later frames start from the one before
    # presets --------------------------------------------------------------------------------
    p = sub.add_parser("presets", help="list the presets and what each sets", description="List the presets.")
    p.add_argument("--json", action="store_true", help="print them as JSON (help, changed fields, full config)")
    p.set_defaults(func=cmd_presets)

    # preview --------------------------------------------------------------------------------
    p = sub.add_parser(
        "preview",
        help="instant preview with a fast feed-forward network (about a second)",
        description="A quick stylisation by Magenta's arbitrary-style network: no optimisation.",
    )
    p.add_argument("content", metavar="CONTENT", help="the photo")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="the painting(s)")
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="output image (.png, .jpg, .jpeg or .webp)")
    p.add_argument("--strength", type=float, default=1.0, metavar="S", help="how much style, 0..1 [default: 1.0]")
    for name in ("size", "style_blend", "color", "color_strength"):
        f = config_field(name)
        add_config_flag(p, f, default=f.default, shown=f.default)
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_preview)

    # batch ----------------------------------------------------------------------------------
    p = sub.add_parser(
        "batch",
        help="many photos in many styles, here or on a Ray cluster; a rerun skips what is done",
        description="Paint every --content in every --style (and/or the pairs of a CSV) into a folder. "
        "Each picture's settings are recorded beside it (NAME.json), so a rerun makes only what is missing, "
        "failed or made with other settings. Ctrl-C stops and keeps the pictures finished so far.",
    )
    p.add_argument("-c", "--content", nargs="+", default=[], metavar="PATH", help="photos: files, folders or globs")
    p.add_argument("-s", "--style", nargs="+", default=[], metavar="PATH", help="paintings: files, folders or globs")
    p.add_argument(
        "--pairs",
        metavar="CSV",
        help="a CSV with columns content, style (';' blends several), optionally output, preset and any "
        "option (steps, size, ...): one picture per row, with that row's options",
    )
    p.add_argument("-o", "--output-dir", metavar="DIR", required=True, help="where the pictures go (created)")
    p.add_argument(
        "--name",
        default=DEFAULT_TEMPLATE,
        metavar="TEMPLATE",
        help="output file name from {content}, {style} and {row}; the extension sets the format "
        f"[default: {DEFAULT_TEMPLATE}]",
    )
    p.add_argument("--preset", default="default", choices=tuple(PRESETS), help="starting values [default: default]")
    p.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="pictures at once on this machine (0: as many as the cores allow with --threads per picture) [default: 0]",
    )
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each picture as a task on the Ray cluster at ADDRESS (HOST:PORT), or $RAY_ADDRESS, "
        "or a new local one (needs painterly[ray])",
    )
    p.add_argument("--retries", type=int, default=3, metavar="N", help="Ray: reruns of a picture whose node died")
    p.add_argument("--gpus", type=float, default=0.0, metavar="N", help="Ray: GPUs each picture asks for")
    p.add_argument("--redo", action="store_true", help="make every picture again, even those already made")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    g = p.add_argument_group("style options of every picture (a CSV row may set its own)")
    for f in fields():
        add_config_flag(g, f, shown=getattr(PRESETS["default"], f.name))
    p.set_defaults(func=cmd_batch)

    # app / worker -----------------------------------------------------------------------------
    p = sub.add_parser("app", help="start the web studio (and its worker processes)", description="Start the studio.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind [default: 127.0.0.1, this machine only]")
    p.add_argument("--port", type=int, default=8501, help="port [default: 8501]")
    p.add_argument("--workers", type=int, default=1, metavar="N", help="worker processes running jobs [default: 1]")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where jobs are kept [default: $PAINTERLY_HOME or the user data folder]"
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the workers run the jobs: here, or as tasks on the Ray cluster at $RAY_ADDRESS [default: local]",
    )
    p.set_defaults(func=cmd_app)

    p = sub.add_parser("worker", help="run queued studio jobs in this process", description="Run queued jobs.")
    p.add_argument(
        "--data-dir", metavar="DIR", help="where jobs are kept [default: $PAINTERLY_HOME or the user data folder]"
    )
    p.add_argument("--once", action="store_true", help="stop when the queue is empty")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="torch CPU threads (0: share the cores evenly among this host's workers) [default: 0]",
    )
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="run jobs here, or as tasks on a Ray cluster (needs painterly[ray]) [default: local]",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        metavar="N",
        help="lower this worker's CPU priority by N, to keep a web server on the same machine quick "
        "(painterly app starts its workers at 10) [default: 0]",
    )
    p.set_defaults(func=cmd_worker)
    return parser


# --- helpers ----------------------------------------------------------------------------------


def _add_style_flags(p: argparse.ArgumentParser) -> None:
    """--json, -q and every StyleConfig field as a flag (a run's options, for stylize and video)."""
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    g = p.add_argument_group("style options (defaults shown are the 'default' preset's)")
    for f in fields():
        add_config_flag(g, f, shown=getattr(PRESETS["default"], f.name))


def _error(message: str) -> None:
    print(f"painterly: error: {message}", file=sys.stderr)


def check_output(path: str) -> Path:
    """Refuse an output that cannot be written, before any long work starts."""
    out = Path(path)
    if out.suffix.lower() not in SAVE_FORMATS:
        raise CliError(f"{out}: unsupported output type {out.suffix or '(none)'!r}; use {', '.join(SAVE_FORMATS)}")
    folder = out.parent
    if not folder.is_dir():
        raise CliError(f"{out}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise CliError(f"{out}: the folder {folder} is not writable")
    if out.is_dir():
        raise CliError(f"{out} is a folder; give a file name such as {out / 'out.png'}")
    return out


def check_not_an_input(out: Path, inputs: Sequence[Optional[str]]) -> None:
    """Refuse to write the result over one of the pictures it is made from."""
    for src in inputs:
        if src and out.exists() and os.path.samefile(out, src):
            raise CliError(f"{out} is also an input; writing the result there would destroy it")


def _lazy(module: str, name: str, what: str) -> Any:
    """Import painterly.<module>.<name> on first use, or explain what is missing."""
    import importlib

    try:
        return getattr(importlib.import_module(f"painterly.{module}"), name)
    except ImportError as e:
        raise CliError(f"{what} is not available in this install ({one_line(e)})") from None


@contextlib.contextmanager
def _stop_on(*signals: int, on_stop: Optional[Callable[[], None]] = None) -> Iterator[threading.Event]:
    """The one Ctrl-C mechanism of the commands: the first of ``signals`` sets the event (the
    command stops cleanly and keeps its work); a second Ctrl-C aborts (KeyboardInterrupt).

    ``on_stop`` runs at each signal that does not abort (to say what happens now).
    """
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        if on_stop is not None:
            on_stop()

    previous = {}
    for sig in signals:
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave the signal as it is
            pass
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def snapshot_path(out: Path, step: int) -> Path:
    """out.png, step 100 -> out_000100.png (next to the output)."""
    return out.with_name(f"{out.stem}_{step:06d}{out.suffix}")


def loss_log_path(out: Path) -> Path:
    """out.png -> out.loss.tsv (next to the output)."""
    return out.with_name(f"{out.stem}.loss.tsv")


_LOG_COLUMNS = ("step", "scale", "loss", "content", "style", "tv", "elapsed")


def _log_row(p: Progress) -> str:
    cells = [p.step, p.scale, f"{p.loss:.6g}", *(f"{p.losses.get(k, 0.0):.6g}" for k in ("content", "style", "tv"))]
    return "\t".join(map(str, [*cells, f"{p.elapsed:.2f}"])) + "\n"


# --- commands ---------------------------------------------------------------------------------


def flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The StyleConfig fields the user gave as flags (only those), as config values."""
    overrides = {f.name: getattr(args, f.name) for f in fields() if hasattr(args, f.name)}
    return {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}


def build_config(args: argparse.Namespace) -> StyleConfig:
    """The chosen preset with the flags the user gave (only those) applied."""
    overrides = flag_overrides(args)
    if args.init_image is not None:
        if overrides.get("init", "image") != "image":
            raise UsageError(f"--init-image needs --init image, not --init {overrides['init']}")
        overrides["init"] = "image"
    try:
        cfg = preset(args.preset, **overrides)
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    if cfg.init == "image" and args.init_image is None:
        raise UsageError("--init image needs --init-image PATH")
    if args.save_every < 0:
        raise UsageError("--save-every must be 0 (off) or a positive number of steps")
    # Preview images cost time and the CLI only uses them for snapshots, so it asks for them
    # exactly at the snapshot steps (unless --preview-every was given).
    if "preview_every" not in overrides:
        cfg = cfg.replace(preview_every=args.save_every)
    elif args.save_every and (not cfg.preview_every or args.save_every % cfg.preview_every):
        raise UsageError("--save-every must be a multiple of --preview-every")
    return cfg


def cmd_stylize(args: argparse.Namespace) -> int:
    """painterly stylize: the full optimisation, with progress, snapshots and a summary."""
    # Everything that can be refused is refused before torch loads and the long run starts.
    out = check_output(args.output)
    check_not_an_input(out, [args.content, *args.styles, args.init_image])
    cfg = build_config(args)
    content = load_image(args.content, name="content image")
    styles = [load_image(s, name="style image") for s in args.styles]
    init = load_image(args.init_image, name="start image") if args.init_image else None
    if args.depth == 16 and SAVE_FORMATS[out.suffix.lower()] not in DEPTH16_FORMATS:
        raise UsageError(f"--depth 16 needs a .png or .tif output, not {out.suffix}")
    try:
        plan = RunPlan.build(cfg, *content.size, n_styles=len(styles))
        plan.check_paintings(cfg, [s.size for s in styles])
        memory = plan.memory(cfg)  # a size that cannot fit is refused here, before torch loads
    except PlanError as e:
        raise CliError(str(e)) from None
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    if args.plan:
        # The time on this machine, timed as the studio times it when it starts (a few steps at
        # 160 and 320 px, a few seconds): the cost written in the code (plan.DEFAULT_STEP_COST)
        # is one thread's CPU time on the first machine, 3.4x this Xeon's with AMX (RESULTS.md,
        # "The allocator").
        from .calibrate import measure

        if not args.quiet:
            print("painterly: timing a few small steps on this machine ...", file=sys.stderr)
        cost = measure()
        print("\n".join(memory.lines(plan.scale_seconds(cfg, cost), plan.estimate(cfg, cost))))
        return EXIT_OK
    if memory.peak > 2 * 10**9 and not args.quiet:
        print(f"painterly: {memory.lines()[0]}", file=sys.stderr)

    from .progress import Cancelled
    from .stylize import stylize
    from .vgg import WeightsError

    reporter = ProgressReporter(sys.stderr, plan, cfg, quiet=args.quiet)
    log = loss_log_path(out) if args.save_every else None
    if log is not None:
        log.write_text("\t".join(_LOG_COLUMNS) + "\n")
    snapshots: list[str] = []
    last: list[Progress] = []

    with _stop_on(signal.SIGINT) as stop:

        def on_progress(p: Progress) -> None:
            last[:] = [p]
            note = ""
            if args.save_every and p.step % args.save_every == 0:
                assert log is not None
                with open(log, "a") as f:
                    f.write(_log_row(p))
                saved = ""
                if p.image is not None:
                    path = save_image(p.image, snapshot_path(out, p.step))
                    snapshots.append(str(path))
                    saved = f"  saved {path.name}"
                terms = ", ".join(f"{k} {v:.4g}" for k, v in p.losses.items())
                note = f"step {p.step}/{p.steps}  loss {p.loss:.6g} ({terms}){saved}"
            reporter.update(p, note)
            if stop.is_set():
                reporter.note("stopping: keeping the best image so far (Ctrl-C again to abort)")
                raise Cancelled

        t0 = time.perf_counter()
        try:
            result = stylize(content, styles, cfg, on_progress=on_progress, init_image=init, depth=args.depth)
        except WeightsError as e:
            raise CliError(one_line(e)) from None
        finally:
            reporter.close()
        seconds = time.perf_counter() - t0
        stopped = stop.is_set()

    save_image(result, out, info=print_info(args.content))  # the photo's ICC profile and DPI carried over
    done = last[0].step if last else 0
    width, height = plan.final_size
    if not args.quiet:
        how = f"stopped after {done} of {cfg.steps} steps" if stopped else f"{done} steps"
        print(f"painterly: wrote {out} ({width}x{height}, {how}, {seconds:.1f} s)", file=sys.stderr)
    if args.json:
        summary = {
            "output": str(out),
            "size": [width, height],
            "steps": done,
            "stopped_early": stopped,
            "loss": last[0].loss if last else None,
            "losses": dict(last[0].losses) if last else {},
            "seconds": round(seconds, 3),
            "snapshots": snapshots,
            "loss_log": str(log) if log else None,
            "preset": args.preset,
            "precision": last[0].precision if last else None,
            "config": cfg.to_dict(),
        }
        print(json.dumps(summary))
    return EXIT_INTERRUPTED if stopped else EXIT_OK


def cmd_video(args: argparse.Namespace) -> int:
    """painterly video: a clip frame by frame, kept in a folder as made, resumable, then encoded."""
    from . import videoio as vio

    out = vio.check_output(args.output)
    check_not_an_input(out, [args.input, *args.styles])
    if args.frames < 0 or args.fps < 0:
        raise UsageError("--frames and --fps must be 0 (automatic) or more")
    cfg = build_config(args)
    try:
        vcfg = VideoConfig(**{f.name: getattr(args, f.name) for f in video_fields() if hasattr(args, f.name)})
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    info = vio.probe(args.input)
    styles = [load_image(s, name="style image") for s in args.styles]

    from .progress import Cancelled
    from .vgg import WeightsError
    from .video import VideoProgress, frame_size, stylize_video

    try:
        size = frame_size(cfg, info.width, info.height, n_styles=len(styles))
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    frames = vio.read_frames(args.input, size, max_frames=args.frames or None)
    work = out if out.suffix == "" else out.with_name(out.name + ".frames")
    manifest = {
        "input": str(Path(args.input).resolve()),
        "frames": len(frames),
        "size": list(size),
        "styles": [str(Path(s).resolve()) for s in args.styles],
        "config": cfg.to_dict(),
        "video": vcfg.to_dict(),
    }
    done = _video_workdir(work, manifest)[: len(frames)]
    reporter = VideoReporter(sys.stderr, quiet=args.quiet)
    if done:
        reporter.note(f"painterly: resuming at frame {len(done) + 1} of {len(frames)} (frames kept in {work})")
    else:
        reporter.note(f"painterly: {len(frames)} frames at {size[0]}x{size[1]}; finished frames go to {work}")

    with _stop_on(signal.SIGINT) as stop:

        def on_progress(p: VideoProgress) -> None:
            reporter.update(p, latest=str(work / vio.frame_name(p.frame)) if p.image is not None else "")
            if stop.is_set():
                reporter.note("stopping: finished frames are kept; run the same command again to resume")
                raise Cancelled

        t0 = time.perf_counter()
        try:
            result = stylize_video(
                frames,
                styles,
                cfg,
                vcfg,
                on_progress=on_progress,
                on_frame=lambda i, img: vio.save_frame(img, work, i),
                done=done,
            )
        except WeightsError as e:
            raise CliError(one_line(e)) from None
        finally:
            reporter.close()
        seconds = time.perf_counter() - t0

    finished = len(result) == len(frames)
    if finished and out.suffix:
        fps = info.fps
        if info.source is None and args.fps:  # a folder of frames has no rate of its own
            fps = Fraction(args.fps).limit_denominator(1001)
        vio.write_video(result, out, fps, audio_from=info.source if info.has_audio else None)
        if not args.keep_frames:
            shutil.rmtree(work)
    if not args.quiet:
        if finished:
            how = f"{len(result)} frames, {size[0]}x{size[1]}, {seconds:.1f} s"
            print(f"painterly: wrote {out} ({how})", file=sys.stderr)
        else:
            print(f"painterly: stopped after {len(result)} of {len(frames)} frames; kept in {work}", file=sys.stderr)
    if args.json:
        summary = {
            "output": str(out) if finished else None,
            "frames": len(frames),
            "done": len(result),
            "resumed_at": len(done),
            "size": list(size),
            "seconds": round(seconds, 3),
            "stopped_early": not finished,
            "work_dir": str(work),
            "preset": args.preset,
            "config": cfg.to_dict(),
            "video": vcfg.to_dict(),
        }
        print(json.dumps(summary))
    return EXIT_OK if finished else EXIT_INTERRUPTED


VIDEO_MANIFEST = "painterly-video.json"


def _video_workdir(work: Path, manifest: dict[str, Any]) -> list[Image.Image]:
    """Create the frames folder, or reopen it for a resume: the frames already made there.

    A folder made for another clip or other settings is refused rather than mixed in.
    """
    from .videoio import finished_frames

    record = work / VIDEO_MANIFEST
    if work.is_dir() and record.is_file():
        try:
            old = json.loads(record.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            raise CliError(
                f"{work} holds frames made from another clip or with other settings; "
                "remove it, or choose another output"
            )
        return finished_frames(work)
    if work.is_dir() and any(work.iterdir()):
        raise CliError(f"{work} exists and is not empty; choose an empty or new folder")
    work.mkdir(exist_ok=True)
    write_atomic(record, json.dumps(manifest, indent=1).encode())
    return []


def cmd_presets(args: argparse.Namespace) -> int:
    """painterly presets: each preset, its help and the fields it sets."""
    if args.json:
        data = {
            name: {"help": PRESET_HELP.get(name, ""), "sets": _plain(preset_diff(name)), "config": cfg.to_dict()}
            for name, cfg in PRESETS.items()
        }
        print(json.dumps(data, indent=2))
        return EXIT_OK
    width = max(map(len, PRESETS))
    for name in PRESETS:
        print(f"{name:<{width}}  {PRESET_HELP.get(name, '')}")
        diff = preset_diff(name)
        sets = "  ".join(as_flag(k, v) for k, v in diff.items()) or "(the defaults of every option)"
        print(f"{'':<{width}}  {sets}")
    return EXIT_OK


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def cmd_preview(args: argparse.Namespace) -> int:
    """painterly preview: the feed-forward network, no optimisation and no torch."""
    out = check_output(args.output)
    check_not_an_input(out, [args.content, *args.styles])
    content = load_image(args.content, name="content image")
    styles = [load_image(s, name="style image") for s in args.styles]
    # preview() checks its options as StyleConfig does: the same refusal as `stylize` gives.
    preview: Callable[..., Image.Image] = _lazy("preview", "preview", "the instant preview")
    t0 = time.perf_counter()
    try:
        result = preview(
            content,
            styles,
            size=args.size,
            strength=args.strength,
            style_blend=tuple(args.style_blend),
            color=args.color,
            color_strength=args.color_strength,
        )
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    save_image(result, out)
    if not args.quiet:
        print(
            f"painterly: wrote {out} ({result.width}x{result.height}, {time.perf_counter() - t0:.1f} s)",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_batch(args: argparse.Namespace) -> int:
    """painterly batch: plan (everything refused before any work), run here or on Ray, summarise."""
    from .batch import (
        PICTURE_THREADS,
        BatchError,
        Cancelled,
        check_reachable,
        connect,
        local_executor,
        plan_batch,
        ray_executor,
        run_batch,
        split_cores,
    )
    from .batch.reporter import BatchReporter

    if args.workers < 0 or args.retries < 0 or args.gpus < 0:
        raise UsageError("--workers, --retries and --gpus must be 0 or more")
    try:
        cfg = preset(args.preset, **flag_overrides(args))
    except ConfigError as e:
        raise UsageError(flag_message(str(e))) from None
    if cfg.init == "image":
        raise UsageError(
            "--init image is for one picture (painterly stylize --init-image); a batch starts each from its own photo"
        )
    reporter = BatchReporter(sys.stderr, quiet=args.quiet)
    try:
        address = "" if args.ray is None else args.ray or os.environ.get("RAY_ADDRESS", "")
        if address not in ("", "auto", "local"):
            check_reachable(address)  # first, even with nothing to do: a wrong address is said at once
        plan = plan_batch(
            args.output_dir,
            cfg,
            contents=args.content,
            styles=args.style,
            pairs_csv=args.pairs,
            template=args.name,
            redo=args.redo,
        )
        for s in plan.skipped:
            reporter.note(f"skipped {s.path}: {s.reason}")
        started_ray = False
        if args.ray is not None:
            started_ray = connect(address or None) if plan.todo else False
            threads = cfg.threads or PICTURE_THREADS
            executor, how = ray_executor(retries=args.retries, gpus=args.gpus), f"Ray tasks of {max(1, threads)} CPU(s)"
        else:
            workers, threads = split_cores(args.workers, cfg.threads)
            executor, how = local_executor(workers), f"{workers} process(es) x {threads} thread(s)"
    except BatchError as e:
        raise CliError(str(e)) from None
    if plan.done:
        reporter.note(f"{len(plan.done)} already made with the same settings in {plan.output_dir}")
    if plan.todo:
        reporter.note(f"making {len(plan.todo)} picture(s) with {how}")

    with _stop_on(signal.SIGINT) as stop:

        def on_progress(p: Any) -> None:
            reporter.update(p)
            if stop.is_set():
                reporter.note("stopping: keeping the finished pictures (Ctrl-C again to abort)")
                raise Cancelled

        try:
            result = run_batch(
                plan,
                executor=executor,
                threads=threads,
                on_progress=on_progress,
                name="ray" if args.ray is not None else "local",
            )
        finally:
            reporter.close()
            if args.ray is not None and plan.todo and started_ray:
                import ray

                ray.shutdown()
    made, failed = len(result.made), len(result.failed)
    rate = 60 * made / result.seconds if result.seconds and made else 0.0
    if result.stopped:
        reporter.note(f"stopped: made {made} of {len(plan.todo)}; run the same command again to make the rest")
    elif plan.todo:
        reporter.note(f"made {made} picture(s) in {result.seconds:.1f} s ({rate:.2f} per minute), {failed} failed")
    if args.json:
        summary = {
            "output_dir": str(plan.output_dir),
            "made": [
                {"output": str(f.item.output), "seconds": round(f.seconds, 3), "by": f.where} for f in result.made
            ],
            "failed": [{"output": str(f.item.output), "error": f.error} for f in result.failed],
            "already_made": [str(i.output) for i in plan.done],
            "skipped": [{"path": s.path, "reason": s.reason} for s in plan.skipped],
            "stopped_early": result.stopped,
            "seconds": round(result.seconds, 3),
            "pictures_per_minute": round(rate, 3),
            "executor": result.executor,
            "threads_per_picture": threads,
            "preset": args.preset,
        }
        print(json.dumps(summary))
    if result.stopped:
        return EXIT_INTERRUPTED
    return EXIT_ERROR if failed else EXIT_OK


def cmd_app(args: argparse.Namespace) -> int:
    """painterly app: the studio (Streamlit) and its workers; blocks until stopped."""
    if args.workers < 0:
        raise UsageError("--workers must be 0 or more")
    if not 1 <= args.port <= 65535:
        raise UsageError(f"--port must be between 1 and 65535, got {args.port}")
    launch = _lazy("app", "launch", "the studio")
    return int(
        launch(host=args.host, port=args.port, workers=args.workers, data_dir=args.data_dir, executor=args.executor)
        or 0
    )


def cmd_worker(args: argparse.Namespace) -> int:
    """painterly worker: run queued jobs here until Ctrl-C/SIGTERM (or the queue empties, with --once)."""
    if args.threads < 0:
        raise UsageError("--threads must be 0 (automatic) or more")
    if not 0 <= args.nice <= 19:
        raise UsageError(f"--nice must be between 0 and 19, got {args.nice}")
    run_worker = _lazy("jobs", "run_worker", "the job queue")
    if args.nice and hasattr(os, "nice"):
        os.nice(args.nice)

    def say() -> None:
        print("painterly: stopping; the running job goes back to the queue with its progress", file=sys.stderr)

    with _stop_on(signal.SIGINT, signal.SIGTERM, on_stop=say) as stop:
        taken = run_worker(args.data_dir, stop=stop, once=args.once, threads=args.threads, executor=args.executor)
    print(f"painterly: worker stopped after {taken} job(s)", file=sys.stderr)
    return EXIT_OK


# --- entry point ------------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status (never raises, never exits).

    Set PAINTERLY_DEBUG=1 to see the traceback of an unexpected error.
    """
    parser = make_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(
                "choose a command: stylize, video, batch, presets, preview, app or worker (see 'painterly --help')"
            )
        return args.func(args)
    except SystemExit as e:  # --help and --version print, then exit through argparse
        return e.code if isinstance(e.code, int) else (EXIT_OK if e.code is None else EXIT_ERROR)
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED
    except UsageError as e:
        _error(one_line(e))
        return EXIT_USAGE
    except (CliError, ImageError, ConfigError, ValueError, OSError, ImportError, RuntimeError) as e:
        # RuntimeError covers torch's own failures (out of memory, a missing device).
        if os.environ.get("PAINTERLY_DEBUG"):
            raise
        _error(one_line(e))
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if os.environ.get("PAINTERLY_DEBUG"):
            raise
        _error(f"unexpected {type(e).__name__}: {one_line(e)} (run with PAINTERLY_DEBUG=1 for details)")
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
