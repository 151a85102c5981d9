"""The 12 pairs of ``../shared/images`` with ``painterly batch --ray`` on a local cluster, a Ray worker
killed (SIGKILL) in the middle; then check every picture is there, once.

    python -m benchmarks.ray_kill [--size 128] [--steps 30] [--after 4]

The worker is found the way a person would: the process whose title is ``ray::_ray_render``
(Ray names a worker after the task it runs), killed once ``--after`` pictures have finished.
What happened is printed and kept in ``results/ray_kill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

from .runner import OUT, REPO, SHARED_IMAGES, machine


def _task_pids() -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines()[1:] if "ray::_ray_render" in line]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ray_kill")
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--after", type=int, default=4, help="kill a worker once this many pictures are done")
    args = p.parse_args(argv)
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    from painterly.batch import local_head

    work = OUT / "ray_kill"
    work.mkdir(parents=True, exist_ok=True)
    table = work / "pairs.csv"
    photos, paintings = sorted(SHARED_IMAGES.glob("content_*")), sorted(SHARED_IMAGES.glob("style_*"))
    rows = [f"{c},{s}" for c, s in product(photos, paintings)]
    table.write_text("content,style\n" + "\n".join(rows) + "\n")
    out_dir = work / "out"
    src = str(REPO / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(x for x in (src, os.environ.get("PYTHONPATH")) if x)}
    log: list[str] = []
    killed: list[int] = []
    t0 = time.perf_counter()
    with local_head(os.cpu_count() or 2, env=env) as address:
        cmd = [sys.executable, "-m", "painterly", "batch", "--pairs", str(table), "-o", str(out_dir), "--redo"]
        cmd += ["--size", str(args.size), "--steps", str(args.steps), "--threads", "1", "--ray", address, "--json"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stderr is not None and proc.stdout is not None
        done = 0
        for line in proc.stderr:
            line = line.rstrip()
            log.append(f"{time.perf_counter() - t0:6.1f}s {line}")
            print(log[-1], flush=True)
            if line.startswith("painterly: [") and "]" in line:
                done += 1
            if done >= args.after and not killed:
                pids = _task_pids()
                if pids:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                    log.append(f"{time.perf_counter() - t0:6.1f}s KILLED Ray worker pid {pids[0]} (ray::_ray_render)")
                    print(log[-1], flush=True)
        # The summary is the last JSON line (Ray may print its own lines on stdout too).
        lines = [x for x in proc.stdout.read().splitlines() if x.startswith("{")]
        summary = json.loads(lines[-1]) if lines else {}
        rc = proc.wait()
    pngs = sorted(out_dir.glob("*.png"))
    sidecars = [json.loads(Path(str(x) + ".json").read_text()) for x in pngs]
    by = sorted({m["by"] for m in summary.get("made", [])})
    res = {
        "machine": machine(),
        "command": "python -m benchmarks.ray_kill " + " ".join(argv if argv is not None else sys.argv[1:]),
        "exit_status": rc,
        "pairs": len(rows),
        "killed_pids": killed,
        "outputs": len(pngs),
        "sidecars_done": sum(s.get("status") == "done" for s in sidecars),
        "made_lines": sum(1 for line in log if "painterly: [" in line),
        "made_by_workers": by,
        "failed": summary.get("failed"),
        "seconds": round(time.perf_counter() - t0, 1),
        "log": log,
    }
    (REPO / "benchmarks" / "results" / "ray_kill.json").write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "log"}, indent=1))
    return res


if __name__ == "__main__":
    main()
