"""Quality-against-cost trajectories of candidate settings, for choosing the presets.

    python -m benchmarks.tune [--size 256] [--steps 120] [--candidates name,name,...]

Each candidate is the default preset with some fields changed. Every ``--every`` steps its
image is scored by the shared evaluator (style score, content SSIM, and the network-free
second opinion style2: 0 = the painting, 1 = the photo, lower is closer); the cost axis is the
process CPU time spent inside stylize up to that step (CPU time rather than wall time: the
machine is shared, and CPU time is much less disturbed by other processes). Prints one line
per snapshot and writes ``benchmarks/results/tune_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import time

from PIL import Image

from painterly.config import preset
from painterly.stylize import stylize

from . import quality
from .runner import REPO, pairs

CANDIDATES: dict[str, dict] = {
    "default": {},
    "scales3": {"scales": 3},
    "sw2e-2": {"style_weight": 2e-2},
    "sw2e-3": {"style_weight": 2e-3},
    "sw1e-3": {"style_weight": 1e-3},
    "avgpool": {"pooling": "avg"},
    "content-init": {"init": "content"},
    "adam-lr0.02": {"optimizer": "adam", "lr": 0.02},
    "scales1": {"scales": 1},
    "content-relu2_2": {"content_layers": ("relu2_2", "relu4_2")},
    "cw4": {"content_weight": 4.0},
}


def trajectory(content: Image.Image, style: Image.Image, size: int, steps: int, every: int, **overrides) -> list[dict]:
    cfg = preset("default", size=size, steps=steps, preview_every=every, **overrides)
    snaps: list[tuple[int, float, Image.Image]] = []
    cpu0 = time.process_time()
    paused = 0.0

    def on_progress(p) -> None:
        nonlocal paused
        if p.image is not None:
            snaps.append((p.step, time.process_time() - cpu0 - paused, p.image))

    stylize(content, style, cfg, on_progress=on_progress)
    out = []
    for step, cpu, img in snaps:
        sc = quality.evaluate(img, content, style, gatys=False)
        out.append({"step": step, "cpu": cpu, "style": sc.style, "content": sc.content, "style2": sc.style2,
                    "colour": sc.colour, "texture": sc.texture})  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--report", action="store_true", help="only rewrite the RESULTS.md table from the saved JSON")
    args = p.parse_args()
    if args.report:
        write_report(args.size)
        return
    (c_path, s_path), = pairs(1)[0][:1]
    content, style = Image.open(c_path).convert("RGB"), Image.open(s_path).convert("RGB")
    results = {}
    path = REPO / "benchmarks" / "results" / f"tune_{args.size}.json"
    if path.is_file():
        results = json.loads(path.read_text())
    for name in args.candidates.split(","):
        traj = trajectory(content, style, args.size, args.steps, args.every, **CANDIDATES[name])
        results[name] = {"overrides": CANDIDATES[name], "steps": args.steps, "trajectory": traj}
        for t in traj:
            print(f"{name:14s} step {t['step']:4d} cpu {t['cpu']:7.1f} s  style {t['style']:.3f}  content {t['content']:.3f}  "
                  f"style2 {t['style2']:.2f}", flush=True)  # fmt: skip
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(results, indent=1))


def write_report(size: int) -> None:
    """The trajectories saved so far, as a table in RESULTS.md (block tune-<size>)."""
    from .report import write_block

    data = json.loads((REPO / "benchmarks" / "results" / f"tune_{size}.json").read_text())
    steps = next(iter(data.values()))["steps"]
    lines = [f"`python -m benchmarks.tune --size {size} --steps {steps}` (chelsea × starry night, {size} px; CPU s of the run's own "
             "process, measured while others used most of the machine):", "",
             "| candidate | changes from default | step | CPU s | style score | content SSIM | 2nd opinion: style2 |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for name, rec in data.items():
        for t in rec["trajectory"]:
            if t["step"] % 20 == 0 or t is rec["trajectory"][-1]:
                lines.append(f"| {name} | `{json.dumps(rec['overrides'])}` | {t['step']} | {t['cpu']:.0f} | "
                             f"{t['style']:.3f} | {t['content']:.3f} | "
                             f"{'' if t.get('style2') is None else format(t['style2'], '.2f')} |")  # fmt: skip
    write_block(REPO / "benchmarks" / "RESULTS.md", f"tune-{size}", "\n".join(lines))


if __name__ == "__main__":
    main()
