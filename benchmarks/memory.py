"""Peak resident memory of a run against output size (default preset, a few steps).

Each size runs in its own process (``benchmarks.worker``), so ``ru_maxrss`` is that run's peak.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Sequence

from .runner import OUT, _env, pairs, run_process


def memory_report(sizes: Sequence[int] = (256, 512, 1024, 2048), steps: int = 4, log=print) -> dict:
    """{size: {wall, peak_rss_mb, ...}} for the default preset cut to ``steps`` steps."""
    (content, style), = pairs(1)[0][:1]
    rows = []
    for size in sizes:
        out = OUT / "memory" / str(size)
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "benchmarks.worker", "ours", "--preset", "default",
               "--overrides", json.dumps({"steps": steps}), "--content", str(content), "--style", str(style),
               "--size", str(size), "--out", str(out)]  # fmt: skip
        log(f"memory: {size} px, {steps} steps ...")
        p = run_process(cmd, env=_env())
        ok = p.returncode == 0 and (out / "output.png").is_file()
        rows.append({"size": size, "steps": steps, "ok": ok, "wall": p.wall, "peak_rss_mb": p.peak_rss_mb,
                     "others_cores": p.others_cores, "error": "" if ok else p.stderr[-300:]})  # fmt: skip
        log(f"  {'ok' if ok else 'FAILED'}: {p.wall:.0f} s, peak RSS {p.peak_rss_mb:.0f} MB")
    return {"pair": [Path(content).name, Path(style).name], "rows": rows}
