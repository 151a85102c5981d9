"""Prints (issue 10): peak RSS and seconds per step against size, whole and block mode, the memory
plan's prediction beside each measured peak, and a seam check.

    python -m benchmarks --only prints [--print-sizes 1024,2048 --print-steps 3 --print-blocks 0,1024]
    python -m benchmarks.prints seam OUT.png --block 1024      # the seam check of a finished picture

Each measurement runs in its own process (``python -m benchmarks.prints one ...``), so its peak RSS
(``ru_maxrss``) is that run's: the default preset, one scale at the full size, from the photo, a
few steps. Seconds per step: the median time between progress callbacks after the first step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .runner import OUT, REPO, _env, pairs, run_process


def _config(size: int, steps: int, block: int):
    from painterly.config import preset

    return preset("default", size=size, steps=steps, scales=1, init="content", block_size=block, max_memory="64GB")


def one(size: int, steps: int, block: int, out: Path) -> None:
    """The measured run (in its own process): writes out/output.png and out/times.json."""
    from painterly import images as im
    from painterly.stylize import stylize

    (content, style), = pairs(1)[0][:1]
    cfg = _config(size, steps, block)
    t0 = time.perf_counter()
    stamps: list[float] = []
    blocks: list[int] = []

    def on_progress(p) -> None:
        stamps.append(time.perf_counter() - t0)
        blocks.append(p.block)

    result = stylize(im.load_image(content), im.load_image(style), cfg, on_progress=on_progress)
    result.save(out / "output.png")
    per = np.diff(stamps)
    (out / "times.json").write_text(json.dumps({"stamps": stamps, "block": blocks[-1],
                                                "s_per_step": float(np.median(per)) if len(per) else stamps[0]}))  # fmt: skip


def piece(size: int, start: int, stop: int, init: Path | None, out: Path, budget: str) -> None:
    """Steps start+1..stop of the default preset at ``size`` (in its own process), resumed from
    ``init`` (the picture at step ``start``); saves out/step_STOP.png and out/piece.json. A full
    4096 px run takes longer than the ~10 min a benchmark may hold the shared machine, so it is
    run in pieces; each resume starts L-BFGS afresh from the 8-bit picture."""
    from painterly import images as im
    from painterly.config import preset
    from painterly.stylize import Cancelled, stylize

    (content, style), = pairs(1)[0][:1]
    cfg = preset("default", size=size, max_memory=budget, preview_every=1)
    t0 = time.perf_counter()
    log: list[dict] = []

    def on_progress(p) -> None:
        log.append({"step": p.step, "scale": p.scale, "size": p.size, "block": p.block, "loss": p.loss,
                    "elapsed": time.perf_counter() - t0})  # fmt: skip
        if p.step == stop:
            p.image.save(out / f"step_{stop}.png")
            raise Cancelled

    init_img = im.load_image(init) if init else None
    stylize(im.load_image(content), im.load_image(style), cfg, on_progress=on_progress, init_image=init_img,
            start_step=start)  # fmt: skip
    (out / f"piece_{start}_{stop}.json").write_text(json.dumps({"log": log, "config": cfg.to_dict()}))


def seam_ratio(img: Image.Image, block: int) -> dict:
    """Mean gradient magnitude of the luminance on the block boundaries (the pixel pairs across
    each core edge) against the mean over all other neighbouring pairs. 1.0 = no seam."""
    y = np.asarray(img.convert("L"), np.float64)
    gx, gy = np.abs(np.diff(y, axis=1)), np.abs(np.diff(y, axis=0))
    xs = [x - 1 for x in range(block, y.shape[1], block)]  # pair (x-1, x) crosses the edge at x
    ys = [r - 1 for r in range(block, y.shape[0], block)]
    on = np.concatenate([gx[:, xs].ravel(), gy[ys, :].ravel()])
    mx, my = np.ones(gx.shape[1], bool), np.ones(gy.shape[0], bool)
    mx[xs], my[ys] = False, False
    off = np.concatenate([gx[:, mx].ravel(), gy[my, :].ravel()])
    return {"boundary": float(on.mean()), "elsewhere": float(off.mean()), "ratio": float(on.mean() / off.mean())}


def prints_report(sizes: Sequence[int], steps: int, blocks: Sequence[int], log=print) -> dict:
    """Rows {size, block, steps, peak_rss_mb, predicted_mb, s_per_step, ...}; block -1 = the plan's choice."""
    from painterly.plan import RunPlan, predict_peak

    (content, _), = pairs(1)[0][:1]
    w, h = Image.open(content).size
    rows = []
    for size in sizes:
        for block in blocks:
            cfg = _config(size, steps, max(0, block))
            if block < 0:  # what the plan picks under a 6 GB budget
                mem = RunPlan.build(cfg.replace(block_size=0), w, h).memory(cfg, 6 * 10**9)
                block = mem.scales[-1].block
                cfg = cfg.replace(block_size=block)
            if block and block >= size:
                continue
            out = OUT / "prints" / f"{size}_{block}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            cmd = [sys.executable, "-m", "benchmarks.prints", "one", "--size", str(size), "--steps", str(steps),
                   "--block", str(block), "--out", str(out)]  # fmt: skip
            log(f"prints: {size} px, {'block ' + str(block) if block else 'whole'}, {steps} steps ...")
            p = run_process(cmd, env={**_env(), "PYTHONPATH": f"{REPO / 'src'}:{REPO}"})  # this checkout's painterly
            ok = p.returncode == 0 and (out / "times.json").is_file()
            times = json.loads((out / "times.json").read_text()) if ok else {}
            size_wh = RunPlan.build(cfg, w, h).final_size
            pred = predict_peak(cfg, size_wh, steps, block) / 2**20
            row = {"size": size, "wh": list(size_wh), "block": block, "steps": steps, "ok": ok, "wall": p.wall,
                   "peak_rss_mb": p.peak_rss_mb, "predicted_mb": pred, "s_per_step": times.get("s_per_step"),
                   "others_cores": p.others_cores, "error": "" if ok else p.stderr[-300:],
                   "date": time.strftime("%H:%M UTC", time.gmtime())}  # fmt: skip
            if ok and block:
                row["seam"] = seam_ratio(Image.open(out / "output.png"), block)
                whole = OUT / "prints" / f"{size}_0" / "output.png"
                if whole.is_file():  # the same lines of the whole-image run: the picture's own edges there
                    row["seam_whole"] = seam_ratio(Image.open(whole), block)
            rows.append(row)
            log(f"  {'ok' if ok else 'FAILED'}: {p.wall:.0f} s, peak {p.peak_rss_mb:.0f} MiB (plan {pred:.0f}), "
                f"{times.get('s_per_step', float('nan')):.2f} s/step, others used {p.others_cores:.2f} cores")  # fmt: skip
    return {"rows": rows}


def replan(rows: list[dict]) -> None:
    """The plan's prediction for each measured row, from the memory model as it is now."""
    from painterly.plan import predict_peak

    for r in rows:
        r["predicted_mb"] = predict_peak(_config(r["size"], r["steps"], r["block"]), tuple(r["wh"]), r["steps"], r["block"]) / 2**20


def prints_md(res: dict) -> str:
    m = res["machine"]
    lines = [
        f"Measured on {m['cpu']} (2 cores, AMX: bf16), torch {m['torch']}, {m['date'][:10]}; each size by "
        "`python -m benchmarks --only prints --print-sizes SIZE --print-steps N --print-blocks BLOCKS` "
        f"(the last: `{res['command']}`), under the shared machine's CPU lock.",
        "",
        "Default preset, one scale at the full size, from the photo (chelsea x starry night); MiB = ru_maxrss/1024.",
        "",
        "| size | mode | steps | s/step | peak RSS MiB | plan MiB | plan error | seam ratio (same lines, whole run) | others' cores | at |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in res["rows"]:
        mode = f"blocks of {r['block']}" if r["block"] else "whole"
        if not r["ok"]:
            lines.append(f"| {r['wh'][0]}x{r['wh'][1]} | {mode} | {r['steps']} | failed | | {r['predicted_mb']:.0f} | | | |")
            continue
        err = (r["predicted_mb"] - r["peak_rss_mb"]) / r["peak_rss_mb"] * 100
        seam = f"{r['seam']['ratio']:.3f}" if r.get("seam") else ""
        if r.get("seam_whole"):
            seam += f" (whole: {r['seam_whole']['ratio']:.3f})"
        lines.append(f"| {r['wh'][0]}x{r['wh'][1]} | {mode} | {r['steps']} | {r['s_per_step']:.1f} | "
                     f"{r['peak_rss_mb']:.0f} | {r['predicted_mb']:.0f} | {err:+.0f} % | {seam} | {r['others_cores']:.2f} | "
                     f"{r.get('date', '')} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.prints")
    sub = p.add_subparsers(dest="cmd", required=True)
    o = sub.add_parser("one")
    o.add_argument("--size", type=int, required=True)
    o.add_argument("--steps", type=int, required=True)
    o.add_argument("--block", type=int, default=0)
    o.add_argument("--out", type=Path, required=True)
    pc = sub.add_parser("piece")
    pc.add_argument("--size", type=int, default=4096)
    pc.add_argument("--start", type=int, default=0)
    pc.add_argument("--stop", type=int, required=True)
    pc.add_argument("--init", type=Path)
    pc.add_argument("--max-memory", default="6GB")
    pc.add_argument("--out", type=Path, required=True)
    sub.add_parser("table", help="re-plan the measured rows with the model as it is now; rewrite RESULTS.md's table")
    s = sub.add_parser("seam")
    s.add_argument("image", type=Path)
    s.add_argument("--block", type=int, required=True)
    args = p.parse_args(argv)
    if args.cmd == "one":
        one(args.size, args.steps, args.block, args.out)
    elif args.cmd == "table":
        from . import report

        path = REPO / "benchmarks" / "results" / "prints.json"
        res = json.loads(path.read_text())
        replan(res["rows"])
        path.write_text(json.dumps(res, indent=1, default=str))
        report.write_block(REPO / "benchmarks" / "RESULTS.md", "prints", prints_md(res))
        print(prints_md(res))
    elif args.cmd == "piece":
        args.out.mkdir(parents=True, exist_ok=True)
        piece(args.size, args.start, args.stop, args.init, args.out, args.max_memory)
    else:
        print(json.dumps(seam_ratio(Image.open(args.image), args.block)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
