"""Where a complete run's peak memory falls (issue 10): the real ``painterly stylize`` command, run
in this process with a thread that samples its resident memory (and glibc's heap counters) every
few milliseconds, each sample labelled with the phase the engine is in.

    python -m benchmarks.memtrace --out DIR -- CONTENT STYLE -o OUT.png --size 2048 --max-memory 3GB
    python -m benchmarks.memtrace --table DIR...   # measured peaks against the plan as it is now

DIR/trace.json: the samples; the peak of each (step, phase); the plan's predicted peak per scale.
Phases are the engine's functions, wrapped from outside (nothing in ``src`` knows about this):
the model load, the content and style targets, block statistics and gradients, whole-image
backward, L-BFGS's own step, resizing between scales, conversion to 8/16 bits and saving.
``heap_free`` is memory glibc holds free inside its heap (fragmentation: resident, not in use).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

PAGE = os.sysconf("SC_PAGE_SIZE")


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (n, ctypes.c_size_t)
        for n in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


def _mallinfo() -> Callable[[], tuple[int, int, int]]:
    """() -> (heap in use, heap free, mmapped) bytes, or zeros where glibc's mallinfo2 is absent."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        f = libc.mallinfo2
        f.restype = _MallInfo2
    except (OSError, AttributeError):
        return lambda: (0, 0, 0)

    def read() -> tuple[int, int, int]:
        m = f()
        return m.uordblks, m.fordblks, m.hblkhd

    return read


state: dict[str, Any] = {"phase": [], "step": 0, "scale": 0}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def sample(samples: list, stop: threading.Event, every: float, heap: bool) -> None:
    mi = _mallinfo() if heap else (lambda: (0, 0, 0))
    t0 = time.perf_counter()
    while not stop.is_set():
        used, free, mapped = mi()
        samples.append((round(time.perf_counter() - t0, 3), _rss(), used, free, mapped, state["step"],
                        state["scale"], "/".join(state["phase"]) or "-"))  # fmt: skip
        stop.wait(every)


def phase(name: str, fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapped(*a, **k):
        state["phase"].append(name)
        try:
            return fn(*a, **k)
        finally:
            state["phase"].pop()

    return wrapped


def instrument() -> None:
    import importlib

    import torch
    import torch.nn.functional as F

    from painterly import blocks, cli, images, reporter

    st = importlib.import_module("painterly.stylize")  # the module (the package exports the function)

    def wrap(obj: Any, attr: str, name: str) -> None:
        setattr(obj, attr, phase(name, getattr(obj, attr)))

    wrap(st, "get_vgg", "load")
    wrap(st, "_initial", "start")
    wrap(blocks, "stitch", "content_targets")
    wrap(blocks, "statistics", "style_targets")
    wrap(blocks, "_sum_over", "stats")
    wrap(blocks.BlockObjective, "__call__", "blocks")
    wrap(torch.optim.LBFGS, "step", "lbfgs")
    wrap(torch.Tensor, "backward", "backward")
    wrap(torch.autograd, "grad", "grad")
    wrap(F, "interpolate", "interpolate")
    wrap(images, "to_array", "to_array")
    wrap(cli, "save_image", "save")

    update = reporter.ProgressReporter.update

    def on_update(self, p, *a, **k):
        state["step"], state["scale"] = p.step, p.scale
        return update(self, p, *a, **k)

    reporter.ProgressReporter.update = on_update  # type: ignore[method-assign]


def summary(samples: list) -> dict:
    """Peak RSS per (step, phase) and overall."""
    peaks: dict[str, dict] = {}
    for t, rss, used, free, mapped, step, scale, ph in samples:
        key = f"{step:03d} {ph}"
        if key not in peaks or rss > peaks[key]["rss"]:
            peaks[key] = {"t": t, "rss": rss, "heap_used": used, "heap_free": free, "mmapped": mapped, "scale": scale}
    top = max(samples, key=lambda s: s[1])
    return {
        "peak": {
            "t": top[0],
            "rss": top[1],
            "heap_used": top[2],
            "heap_free": top[3],
            "mmapped": top[4],
            "step": top[5],
            "scale": top[6],
            "phase": top[7],
        },  # fmt: skip
        "by_step_phase": peaks,
    }


def _config(command: str):
    """(config, photo (w, h)) of a traced ``painterly stylize`` command."""
    import shlex

    from PIL import Image

    from painterly import cli

    parsed = cli.make_parser().parse_args(shlex.split(command)[1:])
    return cli.build_config(parsed), Image.open(parsed.content).size


def replan(command: str):
    """The memory plan of a traced ``painterly stylize`` command, from the model as it is now."""
    from painterly.config import parse_bytes
    from painterly.plan import RunPlan

    cfg, (w, h) = _config(command)
    return RunPlan.build(cfg, w, h).memory(cfg, parse_bytes(cfg.max_memory) if cfg.max_memory else None)


def table(dirs: list[Path]) -> str:
    """Markdown rows: each traced run's measured peak against the model's prediction as it is now
    for the scales and blocks that ran (a budget's choice may differ under a new model)."""
    from painterly.plan import ScaleMemory, predict_peak, whole_before

    lines = [
        "| run | scales: side x steps (the last's mode) | wall | peak RSS MiB (step, phase) | plan MiB | plan error |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for d in dirs:
        r = json.loads((d / "trace.json").read_text())
        cfg, _ = _config(r["command"])
        ran = r["plan"]
        run = [ScaleMemory(tuple(s["size"]), s["steps"], s["block"], 0, 0) for s in ran]
        plan = max(predict_peak(cfg, s.size, s.steps, s.block, whole_before(run[:i])) for i, s in enumerate(run))
        plan /= 2**20
        last = ran[-1]
        mode = f"blocks of {last['block']}" if last["block"] else "whole"
        scales = " > ".join(f"{max(s['size'])}x{s['steps']}" for s in ran)
        peak = max(r["ru_maxrss"], r["peak"]["rss"]) / 2**20
        args = " ".join(Path(a).name if "/" in a else a for a in r["command"].split()[2:])
        lines.append(f"| `{args}` | {scales} ({mode}) | {r['wall']:.0f} s | {peak:.0f} ({r['peak']['step']}, "
                     f"{r['peak']['phase']}) | {plan:.0f} | {(plan - peak) / peak * 100:+.0f} % |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.memtrace")
    p.add_argument("--out", type=Path)
    p.add_argument("--table", type=Path, nargs="+", help="print the table of these traced runs' folders")
    p.add_argument("--every", type=float, default=0.02, help="seconds between samples")
    p.add_argument("--no-heap", action="store_true", help="RSS only (mallinfo2 walks the free lists)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then painterly stylize's arguments")
    a = p.parse_args(argv)
    if a.table:
        print(table(a.table))
        return 0
    if a.out is None:
        p.error("--out DIR is needed to trace a run")
    args = [x for x in a.args if x != "--"]
    a.out.mkdir(parents=True, exist_ok=True)
    instrument()
    from painterly import cli

    samples: list = []
    stop = threading.Event()
    th = threading.Thread(target=sample, args=(samples, stop, a.every, not a.no_heap), daemon=True)
    th.start()
    t0 = time.perf_counter()
    rc = cli.main(["stylize", *args])
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    import resource

    command = "painterly stylize " + " ".join(args)
    mem = replan(command)
    res = {
        "command": command,
        "rc": rc,
        "wall": wall,
        "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "plan": [{"size": s.size, "steps": s.steps, "block": s.block, "peak": s.peak} for s in mem.scales],
        **summary(samples),
        "samples": samples,
    }
    (a.out / "trace.json").write_text(json.dumps(res))
    pk = res["peak"]
    mib = {k: v / 2**20 for k, v in pk.items() if k in ("rss", "heap_used", "heap_free", "mmapped")}
    print(f"wall {wall:.0f} s, ru_maxrss {res['ru_maxrss'] / 2**20:.0f} MiB, plan {mem.peak / 2**20:.0f} MiB; "
          f"peak {mib['rss']:.0f} MiB at step {pk['step']} ({pk['phase']}), heap used {mib['heap_used']:.0f} "
          f"free {mib['heap_free']:.0f} mmapped {mib['mmapped']:.0f} MiB")  # fmt: skip
    for s in mem.scales:
        print(f"  plan {s.size} x{s.steps} block {s.block}: {s.peak / 2**20:.0f} MiB")
    return rc


if __name__ == "__main__":
    sys.exit(main())
