"""Freed buffers kept in the process or returned to the system (``painterly.allocator``): the
step time, the kernel's share of it and the peak memory of each, side by side.

    python -m benchmarks.allocator [--sizes 256,512,1024] [--steps 16] [--rounds 2] [--no-write]

Each run is the engine's own ``stylize`` (default preset, one scale, from the photo, so that no
preview runs) in a process of its own, since the allocator's setting is per process; the memory
plan's choice is overridden to force each setting. The two settings alternate run by run, so
that both see the same machine; each is reported by its median step (after two warm-up steps)
over its rounds' runs. Writes the ``allocator`` block of RESULTS.md and results/allocator.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from .report import write_block
from .runner import SHARED_IMAGES, machine, pythonpath

HERE = Path(__file__).resolve().parent
PAIR = ("content_chelsea.jpg", "style_starry_night.jpg")
MODES = ("release", "keep")

# One run in a fresh process: MODE SIZE STEPS CONTENT STYLE; prints a JSON line.
CODE = """
import json, resource, sys, time
from PIL import Image
import painterly.stylize as engine
from painterly.allocator import release_freed_buffers
from painterly.config import preset

mode, size, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
engine.release_freed_buffers = lambda _plan_says: release_freed_buffers(mode == "release")
content, style = (Image.open(p).convert("RGB") for p in sys.argv[4:6])
cfg = preset("default", size=size, steps=steps, scales=1, init="content", preview_every=0, threads=2)
marks = []
r0 = resource.getrusage(resource.RUSAGE_SELF)
engine.stylize(content, style, cfg, on_progress=lambda p: marks.append(time.perf_counter()))
r = resource.getrusage(resource.RUSAGE_SELF)
gaps = [b - a for a, b in zip(marks, marks[1:])][2:]
print(json.dumps({"step": sorted(gaps)[len(gaps) // 2], "user": r.ru_utime - r0.ru_utime,
                  "sys": r.ru_stime - r0.ru_stime, "faults": r.ru_minflt - r0.ru_minflt,
                  "peak_mb": r.ru_maxrss / 1024}))
"""


def one_run(mode: str, size: int, steps: int) -> dict:
    args = [str(SHARED_IMAGES / p) for p in PAIR]
    env = {"PYTHONPATH": pythonpath(), "OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", CODE, mode, str(size), str(steps), *args],
                         capture_output=True, text=True, env=env, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def measure(sizes: list[int], steps: int, rounds: int, log=print) -> list[dict]:
    rows = []
    for size in sizes:
        runs: dict[str, list[dict]] = {m: [] for m in MODES}
        for r in range(rounds):
            for mode in MODES if r % 2 == 0 else MODES[::-1]:
                runs[mode].append(one_run(mode, size, steps))
                log(f"  {size} px, {mode}: {runs[mode][-1]}")
        row: dict = {"size": size}
        for mode, rs in runs.items():
            row[mode] = {"step": statistics.median(x["step"] for x in rs),
                         "sys_share": statistics.median(x["sys"] / (x["user"] + x["sys"]) for x in rs),
                         "faults_per_step": statistics.median(x["faults"] / steps for x in rs),
                         "peak_mb": max(x["peak_mb"] for x in rs), "steps": [x["step"] for x in rs]}  # fmt: skip
        rows.append(row)
    return rows


def allocator_md(res: dict) -> str:
    m = res["machine"]
    lines = ["### Freed buffers: returned to the system or kept", "",
             f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, 2 threads, torch {m['torch']}, run alone. "
             f"Command: `{res['command']}`. {PAIR[0]} × {PAIR[1]}, default preset, one scale, from the photo; "
             f"{res['steps']} steps a run, {res['rounds']} runs per setting and size, alternating.", "",
             "| size | s/step released | s/step kept | kept vs released | kernel share of CPU released / kept "
             "| page faults per step released / kept | peak RSS MiB released / kept |",
             "|---:|---:|---:|---:|---|---|---|"]  # fmt: skip
    for r in res["rows"]:
        a, b = r["release"], r["keep"]
        lines.append(f"| {r['size']} | {a['step']:.2f} | {b['step']:.2f} | {b['step'] / a['step'] - 1:+.0%} | "
                     f"{a['sys_share']:.0%} / {b['sys_share']:.0%} | {a['faults_per_step']:,.0f} / "
                     f"{b['faults_per_step']:,.0f} | {a['peak_mb']:.0f} / {b['peak_mb']:.0f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.allocator", description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="256,512,1024")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    res = {"machine": machine(), "steps": args.steps, "rounds": args.rounds,
           "command": "python -m benchmarks.allocator " + " ".join(argv if argv is not None else sys.argv[1:]),
           "rows": measure([int(s) for s in args.sizes.split(",")], args.steps, args.rounds)}  # fmt: skip
    md = allocator_md(res)
    print(md)
    if not args.no_write:
        (HERE / "results" / "allocator.json").write_text(json.dumps(res, indent=1))
        write_block(HERE / "RESULTS.md", "allocator", md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
