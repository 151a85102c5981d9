"""Batches: 8 pictures at 256 px, default preset, made three ways (``python -m benchmarks --only batch``).

(1) one after another in one process with all cores (a loop over ``stylize``), (2) ``painterly
batch`` on this machine (its default split, and the other split, for choosing the default),
(3) ``painterly batch --ray`` on a local Ray cluster (``ray start --head``, all cores). Every mode is
one fresh process timed from start to exit (torch import and VGG loading included, as a user
would see it). Ray's per-task overhead is measured twice: (3) minus (2) per picture, and a no-op
task carrying a 256 px picture in and out, on the same cluster.

    python -m benchmarks.batch [--modes sequential,local,local-1x2,ray] [--size 256] [--pictures 8]

Modes given are measured again; the others are kept from results/batch.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from itertools import product
from pathlib import Path

from . import report
from .runner import OUT, REPO, SHARED_IMAGES, _busy_jiffies, machine

RESULTS = REPO / "benchmarks" / "results" / "batch.json"
MODES = ("sequential", "local", "local-1x2", "ray")
LABELS = {
    "sequential": "(1) one after another, one process, all cores (2 threads)",
    "local": "(2) `painterly batch` (default: 2 processes x 1 thread)",
    "local-1x2": "(2') `painterly batch --workers 1 --threads 2`",
    "ray": "(3) `painterly batch --ray` on a local cluster (2 CPUs, 1 per task)",
}
SRC = REPO / "src"


def pairs(n: int) -> list[tuple[Path, Path]]:
    photos = sorted(SHARED_IMAGES.glob("content_*.jpg"))
    paintings = sorted(SHARED_IMAGES.glob("style_*.jpg"))
    return list(product(photos, paintings))[:n]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)}
    env.setdefault("RAY_AUTH_MODE", "token")
    return env


def _timed(cmd: list[str], env: dict[str, str]) -> dict:
    busy0, t0 = _busy_jiffies(), time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ...: exit {proc.returncode}: {proc.stderr[-2000:]}")
    return {"wall": wall, "busy_cores": (_busy_jiffies() - busy0) / wall, "stdout": proc.stdout}


_SEQUENTIAL = """
import sys, time
from painterly import load_image, preset, stylize
size, pairs = int(sys.argv[1]), sys.argv[2:]
for c, s in zip(pairs[::2], pairs[1::2]):
    t = time.perf_counter()
    stylize(load_image(c), load_image(s), preset("default", size=size, threads=2))
    print(f"{c} {s} {time.perf_counter() - t:.2f}", flush=True)
"""


def run_mode(mode: str, size: int, n: int, address: str = "") -> dict:
    env = _env()
    plist = pairs(n)
    work = OUT / "batch"
    work.mkdir(parents=True, exist_ok=True)
    table = work / "pairs.csv"
    with open(table, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["content", "style"])
        w.writerows([[str(c), str(s)] for c, s in plist])
    batch = [sys.executable, "-m", "painterly", "batch", "--pairs", str(table), "-o", str(work / mode)]
    batch += ["--size", str(size), "--redo", "--json", "-q"]
    if mode == "sequential":
        args = [str(p) for pair in plist for p in pair]
        res = _timed([sys.executable, "-c", _SEQUENTIAL, str(size), *args], env)
    elif mode == "local":
        res = _timed(batch, env)
    elif mode == "local-1x2":
        res = _timed([*batch, "--workers", "1", "--threads", "2"], env)
    elif mode == "ray":
        res = _timed([*batch, "--ray", address, "--threads", "1"], env)
    else:
        raise ValueError(mode)
    out = res.pop("stdout")
    if mode != "sequential":
        summary = json.loads(out)
        assert len(summary["made"]) == n and not summary["failed"], summary
        res["pictures_seconds"] = [m["seconds"] for m in summary["made"]]
    res.update(mode=mode, pictures=n, size=size, per_minute=60 * n / res["wall"])
    print(f"batch: {mode}: {res['wall']:.1f} s, {res['per_minute']:.2f} pictures/min", flush=True)
    return res


def ray_noop_overhead(address: str, size: int, rounds: int = 16) -> dict:
    """Round trip of a task that does nothing but carry a picture in and out (warm workers)."""
    import ray

    from painterly.images import encode_image, load_image, resize_long_side

    photo = encode_image(resize_long_side(load_image(pairs(1)[0][0]), size))
    ray.init(address=address, log_to_driver=False)
    try:
        def echo_bytes(data: bytes) -> bytes:  # nested: pickled by value, the workers need not import benchmarks
            return data

        echo = ray.remote(num_cpus=1)(echo_bytes)
        ray.get([echo.remote(photo) for _ in range(4)])  # start the workers
        t0 = time.perf_counter()
        for _ in range(rounds):
            ray.get(echo.remote(photo))
        serial = (time.perf_counter() - t0) / rounds
        t0 = time.perf_counter()
        ray.get([echo.remote(photo) for _ in range(rounds)])
        parallel = (time.perf_counter() - t0) / rounds
    finally:
        ray.shutdown()
    return {"noop_roundtrip_ms": 1000 * serial, "noop_throughput_ms": 1000 * parallel, "payload_bytes": len(photo)}


def batch_md(res: dict) -> str:
    m = res["machine"]
    rows = {r["mode"]: r for r in res["rows"]}
    first = res["rows"][0]
    lines = [
        f"{first['pictures']} pictures (the first {first['pictures']} photo x painting pairs of `../shared/images`) "
        f"at {first['size']} px, the default preset, on {m['cpu']}, {m['cores']} cores, torch {m['torch']}. Each "
        "mode is one fresh process timed from start to exit (torch import, VGG loading and, for Ray, joining "
        "the cluster included; the cluster itself was started beforehand). `busy cores`: the whole "
        "machine's, ours included (2.0 = both cores busy).",
        "",
        "| mode | wall s | pictures / min | vs (1) | busy cores | date |",
        "|---|---:|---:|---:|---:|---|",
    ]
    base = rows.get("sequential")
    for mode in MODES:
        if mode not in rows:
            continue
        r = rows[mode]
        vs = f"{base['wall'] / r['wall']:.2f}x" if base else ""
        lines.append(
            f"| {LABELS[mode]} | {r['wall']:.0f} | {r['per_minute']:.2f} | {vs} | {r['busy_cores']:.1f} | "
            f"{r.get('date', '')} |"
        )
    if "ray" in rows and "local" in rows:
        per = (rows["ray"]["wall"] - rows["local"]["wall"]) / rows["ray"]["pictures"]
        lines += ["", f"Ray against `painterly batch` here: {per:+.1f} s per picture."]
    if res.get("noop"):
        o = res["noop"]
        lines.append(
            f"A no-op Ray task carrying a {o['payload_bytes'] // 1024} KB picture in and out: "
            f"{o['noop_roundtrip_ms']:.1f} ms round trip one at a time, {o['noop_throughput_ms']:.1f} ms per task "
            "when many are in flight (warm workers)."
        )
    lines.append(f"\nCommand: `{res['command']}`.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__.split("\n\n")[0])
    p.add_argument("--modes", default=",".join(MODES), help=f"comma-separated among {','.join(MODES)}")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--pictures", type=int, default=8)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    modes = [m for m in args.modes.split(",") if m]
    info = machine()
    prev = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"rows": []}
    rows = {r["mode"]: r for r in prev["rows"]}
    noop = prev.get("noop")
    for mode in modes:
        if mode == "ray":
            os.environ.setdefault("RAY_AUTH_MODE", "token")  # before Ray is imported
            from painterly.batch import local_head

            with local_head(info["cores"] or 2, env=_env()) as address:
                rows[mode] = dict(run_mode(mode, args.size, args.pictures, address), date=info["date"])
                noop = dict(ray_noop_overhead(address, args.size), date=info["date"])
        else:
            rows[mode] = dict(run_mode(mode, args.size, args.pictures), date=info["date"])
    command = "python -m benchmarks.batch " + " ".join(argv if argv is not None else sys.argv[1:])
    res = {"machine": info, "command": command.strip(), "rows": [rows[m] for m in MODES if m in rows], "noop": noop}
    if not args.no_write:
        RESULTS.write_text(json.dumps(res, indent=1))
        report.write_block(REPO / "benchmarks" / "RESULTS.md", "batch", batch_md(res))
    print(batch_md(res))
    return res


if __name__ == "__main__":
    main()
