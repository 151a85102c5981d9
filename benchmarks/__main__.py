"""``python -m benchmarks [--quick|--full] [--only SECTIONS] [--fresh]`` (``make bench``).

Quick (the default): one pair at 256 px, the ceiling at 256/512 px, the preview benchmark.
Full: three pairs at 512 px, the ceiling at 256/512/1024 px, memory at 256..2048 px.
Each section's table is written into ``benchmarks/RESULTS.md`` between its markers and its raw
figures to ``benchmarks/results/<section>.json``; everything else in RESULTS.md is left alone.
Baseline runs (classic, pastiche) are cached under ``benchmarks/out/cache`` and reused unless
``--fresh``: they never change, and each takes many minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from . import report
from .runner import OUT, REPO, compare, contact_sheet, machine

RESULTS = REPO / "benchmarks" / "results"
SECTIONS = ("compare", "ceiling", "memory", "preview", "precision", "prints", "batch", "video")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="256 px, one pair (default)")
    mode.add_argument("--full", action="store_true", help="512 px, three pairs, memory up to 2048 px")
    p.add_argument("--only", default="", help=f"comma-separated sections among {','.join(SECTIONS)}")
    p.add_argument("--size", type=int, default=0, help="override the comparison size")
    p.add_argument("--mem-sizes", default="256,512,1024,2048", help="sizes for the memory section")
    p.add_argument(
        "--mem-steps",
        type=int,
        default=4,
        help="steps per memory run (L-BFGS history grows for ~10 full-size steps; 36 gives 12)",
    )
    p.add_argument("--print-sizes", default="1024,2048", help="sizes for the prints section")
    p.add_argument("--print-steps", type=int, default=3, help="full-size steps per prints run")
    p.add_argument(
        "--print-blocks",
        default="0,-1",
        help="prints: block sizes to run (0 = whole image, -1 = the plan's choice under 6 GB)",
    )
    p.add_argument("--pairs", type=int, default=0, help="override the number of pairs (1-3)")
    p.add_argument(
        "--engines",
        default="",
        help="comma-separated subset of default,classic,pastiche,preview "
        "(e.g. 'classic,pastiche' to fill the baseline cache ahead of a comparison)",
    )
    p.add_argument(
        "--video-frames", default="0:16", help="frames of the shared clip for the video section (first:last)"
    )
    p.add_argument("--fresh", action="store_true", help="re-run the baselines instead of reusing cached runs")
    p.add_argument("--no-write", action="store_true", help="print tables; write neither RESULTS.md nor benchmarks/results/")
    args = p.parse_args(argv)
    dump = _dump if not args.no_write else (lambda name, data: None)

    full = args.full
    size = args.size or (512 if full else 256)
    n_pairs = args.pairs or (3 if full else 1)
    sections = [s for s in args.only.split(",") if s] or (list(SECTIONS) if full else ["compare", "ceiling", "preview"])
    bad = set(sections) - set(SECTIONS)
    if bad:
        p.error(f"unknown section(s) {', '.join(sorted(bad))}; choose from {', '.join(SECTIONS)}")
    env = " ".join(f"{k}={os.environ[k]}" for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS") if k in os.environ)
    command = (
        (env + " " if env else "") + "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, torch {info['torch']}, {info['date']}")
    RESULTS.mkdir(exist_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    blocks: dict[str, str] = {}

    if "compare" in sections:

        def update(res: dict) -> None:
            sheet = contact_sheet(res, REPO / "benchmarks" / f"contact_{size}.png")
            res.update(machine=info, command=command)
            dump(f"compare_{size}", res)
            if not args.no_write:  # after every engine: a long run interrupted still leaves its table
                report.write_block(
                    REPO / "benchmarks" / "RESULTS.md", f"compare-{size}", report.compare_md(res, sheet.name)
                )

        only = tuple(e for e in args.engines.split(",") if e)
        res = compare(size, n_pairs, reuse=not args.fresh, on_update=update, only=only)
        blocks[f"compare-{size}"] = report.compare_md(res, f"contact_{size}.png")
    if "ceiling" in sections:
        from .ceiling import ceiling_report

        print("ceiling: conv throughput and step time ...")
        res = ceiling_report((256, 512, 1024) if full else (256, 512))
        res.update(machine=info, command=command)
        dump("ceiling", res)
        blocks["ceiling"] = report.ceiling_md(res)
    if "memory" in sections:
        from .memory import memory_report

        res = memory_report([int(v) for v in args.mem_sizes.split(",")], steps=args.mem_steps)
        res.update(machine=info, command=command)
        old = RESULTS / "memory.json"
        if old.is_file():  # keep the sizes not re-measured this time, with their own date
            prev = json.loads(old.read_text())
            done = {r["size"] for r in res["rows"]}
            kept = [dict(r, date=r.get("date", prev["machine"]["date"])) for r in prev["rows"] if r["size"] not in done]
            res["rows"] = sorted(kept + [dict(r, date=info["date"]) for r in res["rows"]], key=lambda r: r["size"])
        dump("memory", res)
        blocks["memory"] = report.memory_md(res)
    if "preview" in sections:
        blocks["preview"] = _preview_section(quick=not full)
    if "precision" in sections:
        from .precision import block_name, precision_md, precision_report

        print("precision: fp32 and bf16 step times, parity and the finished picture ...")
        res = precision_report()
        res.update(machine=info, command=command)
        name = block_name(res)
        dump(name.replace("-", "_"), res)
        blocks[name] = precision_md(res)

    if "prints" in sections:
        from .prints import prints_md, prints_report

        res = prints_report(
            [int(v) for v in args.print_sizes.split(",")],
            args.print_steps,
            [int(v) for v in args.print_blocks.split(",")],
        )
        res.update(machine=info, command=command)
        old = RESULTS / "prints.json"
        if old.is_file():  # keep the rows not re-measured this time
            done = {(r["size"], r["block"]) for r in res["rows"]}
            kept = [r for r in json.loads(old.read_text())["rows"] if (r["size"], r["block"]) not in done]
            res["rows"] = sorted(kept + res["rows"], key=lambda r: (r["size"], r["block"]))
        from .prints import replan

        replan(res["rows"])
        dump("prints", res)
        blocks["prints"] = prints_md(res)

    if "batch" in sections:  # 8 pictures at 256 px, three ways; writes its own block (benchmarks/batch.py)
        from .batch import main as batch_main

        batch_main(["--no-write"] if args.no_write else [])

    if "video" in sections:
        from . import video

        first, last = (int(v) for v in args.video_frames.split(":"))
        print(f"video: frames {first + 1}-{last} at {size} px (resumable: rerun to continue) ...")
        for mode in video.MODES:
            print(mode, video.run_mode(mode, size, first, last), flush=True)
        res = video.score(size, first, last)
        res.update(machine=info, command=command)
        dump(f"video_{size}", res)
        blocks[f"video-{size}"] = video.video_md(res)

    for name, text in blocks.items():
        print(f"\n{text}")
        if not args.no_write:
            report.write_block(REPO / "benchmarks" / "RESULTS.md", name, text)
    return 0


def _preview_section(quick: bool) -> str:
    """The preview engineer's benchmark, when it exists (benchmarks/bench_preview.py)."""
    try:
        from . import bench_preview  # type: ignore[attr-defined]
    except ImportError:
        return "_Skipped: `benchmarks/bench_preview.py` (the preview's own benchmark) is not present yet._"
    from .runner import pairs

    plist, _ = pairs(1)
    return bench_preview.run(plist[0][0].parent, quick)


def _dump(name: str, data: dict) -> None:
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))


if __name__ == "__main__":
    sys.exit(main())
