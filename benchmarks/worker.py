"""One engine run in its own process, so that its wall time and peak memory are its own.

    python -m benchmarks.worker ours --preset default --content C --style S --size 512 --out DIR --t0 T

Writes ``DIR/output.png`` and, for our engine, ``DIR/snap_NNNN.png`` plus ``DIR/snaps.json``
([{step, scale, elapsed, cpu}]), where ``elapsed`` counts from ``--t0`` (the parent's clock when it
launched this process), so interpreter start-up and model loading are charged to the run just
as they are to the baselines run through their own command lines; ``cpu`` is this process's
CPU time (all threads), which a busy machine disturbs much less than wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _ours(args: argparse.Namespace) -> None:
    from painterly import images as im
    from painterly.config import preset
    from painterly.stylize import stylize

    # JSON has no tuples; the config's sequence fields are tuples
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.overrides or "{}").items()}
    cfg = preset(args.preset, size=args.size, **overrides)
    if args.snap_every:
        cfg = cfg.replace(preview_every=args.snap_every)
    if args.final_steps:
        _continue_last_scale(args.final_steps)
    content = im.load_image(args.content, name="content image")
    style = im.load_image(args.style, name="style image")
    snaps: list[tuple[dict, object]] = []

    def on_progress(p) -> None:
        if p.image is not None and args.snap_every:
            # Keep the images in memory: encoding PNGs here would be charged to the run.
            snaps.append(({"step": p.step, "scale": p.scale, "elapsed": time.time() - args.t0,
                           "cpu": time.process_time()}, p.image))  # fmt: skip

    out = stylize(content, style, cfg, on_progress=on_progress)
    done = time.time() - args.t0
    out.save(args.out / "output.png")
    meta = []
    for i, (m, img) in enumerate(snaps):
        img.save(args.out / f"snap_{i:04d}.png")
        meta.append({**m, "file": f"snap_{i:04d}.png"})
    (args.out / "snaps.json").write_text(json.dumps({"snaps": meta, "done": done, "config": cfg.to_dict()}))


def _continue_last_scale(steps: int) -> None:
    """The run continued (issue 16's "the same run continued to 300 steps", for a run of several
    scales): every scale but the last keeps its share of ``steps``, the last runs ``steps`` steps.
    ``StyleConfig.steps`` cannot say this (it is shared out anew), so the study patches the plan."""
    from painterly import plan

    shared = plan.scale_plan

    def continued(config, width, height):
        scales = shared(config, width, height)
        return scales[:-1] + [(scales[-1][0], steps)]

    plan.scale_plan = continued


def _preview(args: argparse.Namespace) -> None:
    from painterly import images as im
    from painterly.preview import preview

    content = im.load_image(args.content, name="content image")
    style = im.load_image(args.style, name="style image")
    preview(content, style, size=args.size).save(args.out / "output.png")


def main() -> None:
    p = argparse.ArgumentParser(prog="benchmarks.worker")
    p.add_argument("engine", choices=("ours", "preview"))
    p.add_argument("--preset", default="default")
    p.add_argument("--overrides", default="", help="JSON object of StyleConfig fields to override")
    p.add_argument("--content", required=True)
    p.add_argument("--style", required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--t0", type=float, default=0.0)
    p.add_argument("--snap-every", type=int, default=0)
    p.add_argument("--final-steps", type=int, default=0, help="continue the run: its last scale runs this many steps")
    args = p.parse_args()
    args.t0 = args.t0 or time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    {"ours": _ours, "preview": _preview}[args.engine](args)


if __name__ == "__main__":
    main()
