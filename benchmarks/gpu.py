"""The GPU section (``python -m benchmarks.gpu --out DIR``), for a machine with a CUDA GPU.

One process, so the GPU's start-up is paid once and every figure below is a warm one (the
first picture's cold time, model loading and CUDA start-up included, is reported apart). Parts,
most important first; ``DIR/gpu.json`` is rewritten after each, so a run cut short keeps what
it measured:

1. **The default picture at 512 px** on a few pairs, fp32 and bf16: seconds per picture (the
   preview start included, as a user waits for it), peak GPU memory, and every quality opinion
   of ``benchmarks.quality`` on the final picture (issue 16: "the same picture either way").
2. **Seconds per step** at 512/1024/2048 px in fp32, bf16 and fp16 (one scale, photo start,
   the median after two warm-up steps, synchronised).
3. **The finished picture**: the default run on to 300 steps in the precision ``auto`` picks,
   snapshots every 20 steps, scored afterwards; the first snapshot from which every opinion stays
   within 0.02 of step 300 (``benchmarks.precision.finished_at``, as on the CPU).
4. **The presets** ``draft`` and ``quality`` at 512 px, and **print sizes** (2048 px and up)
   with the default: seconds and peak memory, while time is left.

``--budget`` (seconds from start) skips the optional parts once spent. A contact sheet of the
pictures (``DIR/gpu_sheet.png``) is for looking at them. The GPU machine is lent apart from the
one that keeps the repository, so ``--report DIR/gpu.json`` (here) writes the RESULTS.md block
and keeps the record in ``benchmarks/results/gpu.json``. ``benchmarks.gpu_profile`` says where
a step's time goes there.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

from .pairs import _scores, all_pairs, pair_name, select_pairs
from .precision import FINISHED_TOL, OPINIONS, finished_at, finished_by
from .report import write_block
from .runner import REPO

T0 = time.time()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def environment() -> dict:
    import torch

    from painterly.precision import resolve

    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        env |= {"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1), "sm": f"{p.major}.{p.minor}",
                "cudnn": torch.backends.cudnn.version(), "auto": resolve("auto", "cuda")}  # fmt: skip
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=20).stdout.strip()  # fmt: skip
        except OSError:
            pass
    return env


def picture(content: Image.Image, style: Image.Image, name: str = "default", **overrides) -> dict:
    """One picture, timed and synchronised, with the GPU's peak memory; the image kept for scoring."""
    import torch

    from painterly.config import preset
    from painterly.stylize import stylize

    cfg = preset(name, **overrides)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    _sync()
    t = time.perf_counter()
    out = stylize(content, style, cfg)
    _sync()
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0
    return {"preset": name, "overrides": overrides, "wall": wall, "peak_mb": peak, "image": out}


def step_times(content: Image.Image, style: Image.Image, sizes, precisions, steps: int = 8) -> list[dict]:
    from painterly.config import preset
    from painterly.stylize import stylize

    rows = []
    for size in sizes:
        row: dict = {"size": size}
        for prec in precisions:
            stamps: list[float] = []

            def tick(p, stamps=stamps) -> None:
                _sync()
                stamps.append(time.perf_counter())

            cfg = preset("default", size=size, steps=steps, scales=1, init="content", precision=prec, preview_every=0)
            try:
                stylize(content, style, cfg, on_progress=tick)
                row[prec] = statistics.median(b - a for a, b in zip(stamps[2:], stamps[3:]))
            except Exception as e:  # noqa: BLE001 - a precision the GPU refuses is a finding, not a crash
                row[prec] = None
                row[f"{prec}_error"] = f"{type(e).__name__}: {e}"[:300]
        print(f"  {size} px: " + ", ".join(f"{p} {row[p]:.4f} s/step" if row[p] else f"{p} failed" for p in precisions),
              flush=True)  # fmt: skip
        rows.append(row)
    return rows


def finished_run(content: Image.Image, style: Image.Image, size: int, steps: int, every: int) -> dict:
    """The default run on to ``steps``, snapshots kept in memory (timed), scored afterwards."""
    from painterly.config import preset
    from painterly.stylize import stylize

    cfg = preset("default", size=size, steps=steps, preview_every=every)
    snaps: list[tuple[int, float, Image.Image]] = []
    _sync()
    t = time.perf_counter()

    def keep(p) -> None:
        if p.image is not None:
            snaps.append((p.step, time.perf_counter() - t, p.image))

    final = stylize(content, style, cfg, on_progress=keep)
    wall = time.perf_counter() - t
    traj = [{"step": s, "wall": w, **_scores(img, content, style)} for s, w, img in snaps]
    end = _scores(final, content, style)
    traj = [t for t in traj if t["step"] != steps] + [{"step": steps, "wall": wall, **end}]
    hit = finished_at(traj, end)
    assert hit is not None  # the last snapshot is the end itself
    at80 = next((s for s in traj if s["step"] == 80), None)
    return {"wall": wall, "trajectory": traj, "finished_step": hit["step"], "finished_wall": hit["wall"],
            "step80_within": at80 is not None and finished_by(at80, end),
            "image": final}  # fmt: skip


def sheet(rows: list[list[Image.Image]], path: Path, height: int = 256) -> None:
    thumbs = [[im.resize((round(im.width * height / im.height), height)) for im in row] for row in rows]
    w = max(sum(t.width for t in row) for row in thumbs)
    out = Image.new("RGB", (w, height * len(thumbs)), "white")
    for y, row in enumerate(thumbs):
        x = 0
        for t in row:
            out.paste(t, (x, y * height))
            x += t.width
    out.save(path)


def _cudnn(v) -> str:
    return f"{v // 10000}.{v // 100 % 100}.{v % 100}" if isinstance(v, int) else str(v)


def gpu_md(res: dict) -> str:
    """The RESULTS.md block of one run's gpu.json."""
    e = res["env"]
    pics = {(r["pair"], r["precision"]): r for r in res["pictures"]}
    pairs = list(dict.fromkeys(p for p, _ in pics))
    lines = [f"### On a GPU: {e.get('gpu', 'none')}", "",
             f"Measured {e['date']} on one {e.get('gpu')} ({e.get('gpu_memory_gib')} GiB, compute capability "
             f"{e.get('sm')}, driver {e.get('driver')}, CUDA {e['cuda']}, cuDNN {_cudnn(e.get('cudnn'))}), torch {e['torch']}, "
             f"Python {e['python']}; nothing else ran on it. `precision=auto` picked **{e.get('auto')}** there. "
             f"Command: `{res['command']}`. Times are synchronised wall seconds in one warm process (the "
             "networks loaded), the preview start included as a user waits for it; memory is PyTorch's peak "
             "allocation on the GPU.", "",
             f"First picture of the process (cold: CUDA start-up, weights, cuDNN's first kernels): "
             f"{res['cold']['wall']:.1f} s, {res['cold']['since_start']:.1f} s from process start.", "",
             "**The default picture at 512 px, fp32 and bf16** (the issue's bar for the same picture: 0.01 on "
             "each opinion):", "",
             "| pair | s fp32 / bf16 | peak MiB fp32 / bf16 | style fp32 / bf16 | SSIM fp32 / bf16 | style2 fp32 / bf16 "
             "| largest difference |", "|---|---|---|---|---|---|---:|"]  # fmt: skip
    for p in pairs:
        a, b = pics[(p, "fp32")], pics[(p, "bf16")]
        sa, sb = a["scores"], b["scores"]
        worst = max(abs(sa[k] - sb[k]) for k in OPINIONS)
        lines.append(f"| {p} | {a['wall']:.2f} / {b['wall']:.2f} | {a['peak_mb']:.0f} / {b['peak_mb']:.0f} | "
                     f"{sa['style']:.3f} / {sb['style']:.3f} | {sa['content']:.3f} / {sb['content']:.3f} | "
                     f"{sa['style2']:.3f} / {sb['style2']:.3f} | {worst:.3f} |")  # fmt: skip
    lines += ["", "**Milliseconds per step** (default preset, one scale, photo start, the median after two "
              "warm-up steps):", "", "| size | fp32 | bf16 | fp16 |", "|---:|---:|---:|---:|"]  # fmt: skip
    for r in res["steps"]:
        cells = [f"{r[k] * 1e3:.1f}" if r.get(k) else "failed" for k in ("fp32", "bf16", "fp16")]
        lines.append(f"| {r['size']} | " + " | ".join(cells) + " |")
    if res.get("finished"):
        lines += ["", f"**The finished picture** (the default in {e.get('auto')} run on to 300 steps, a snapshot every "
                  f"20; finished = from the first snapshot on within {FINISHED_TOL} of step 300 on style, SSIM and style2):", "",
                  "| pair | finished at step | s there | s for 300 steps | step 80 within 0.02? |",
                  "|---|---:|---:|---:|---|"]  # fmt: skip
        for r in res["finished"]:
            lines.append(f"| {r['pair']} | {r['finished_step']} | {r['finished_wall']:.1f} | {r['wall']:.1f} | "
                         f"{'yes' if r['step80_within'] else 'no'} |")  # fmt: skip
    rows = [(f"`{r['preset']}` at 512 px", r) for r in res.get("presets", [])]
    rows += [(f"`default` at {r['size']} px", r) for r in res.get("prints", [])]
    if rows:
        lines += ["", "**Presets and print sizes** (first pair):", "", "| picture | s | peak MiB |", "|---|---:|---:|"]
        lines += [f"| {name} | {r['wall']:.1f} | {r['peak_mb']:.0f} |" for name, r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks.gpu", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out/gpu"))
    ap.add_argument("--pairs", default="0,6,11")
    ap.add_argument("--sizes", default="512,1024,2048", help="sizes for seconds per step")
    ap.add_argument("--print-sizes", default="2048,4096", help="the default picture at these sizes, while time is left")
    ap.add_argument("--size", type=int, default=512, help="the pictures' size (parts 1, 3 and 4)")
    ap.add_argument("--finished-steps", type=int, default=300)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument(
        "--budget", type=float, default=300.0, help="seconds from start after which optional parts are skipped"
    )
    ap.add_argument(
        "--report", type=Path, help="write the RESULTS.md block of this gpu.json (measured elsewhere) and stop"
    )
    args = ap.parse_args(argv)
    if args.report:
        res = json.loads(args.report.read_text())
        write_block(REPO / "benchmarks" / "RESULTS.md", "gpu", gpu_md(res))
        if args.report.resolve() != (REPO / "benchmarks" / "results" / "gpu.json").resolve():
            shutil.copyfile(args.report, REPO / "benchmarks" / "results" / "gpu.json")
        print(gpu_md(res))
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    given = argv if argv is not None else sys.argv[1:]
    res: dict = {"env": environment(), "command": " ".join(["python -m benchmarks.gpu", *given])}
    if "gpu" not in res["env"]:
        print("no CUDA GPU here: the parts run on the CPU (a smoke test, not the section's figures)", flush=True)
    print(json.dumps(res["env"]), flush=True)

    def dump() -> None:
        (args.out / "gpu.json").write_text(json.dumps(res, indent=1, default=str))

    def left() -> float:
        return args.budget - (time.time() - T0)

    pairs = select_pairs(args.pairs, all_pairs())
    loaded = {pair_name(p): (Image.open(p[0]).convert("RGB"), Image.open(p[1]).convert("RGB")) for p in pairs}
    sheet_rows: dict[str, list[Image.Image]] = {n: [c] for n, (c, _) in loaded.items()}

    # 1. the default picture, fp32 and bf16 (the first one is cold: model load and CUDA start-up)
    res["pictures"] = []
    for i, (name, (c, s)) in enumerate(loaded.items()):
        for prec in ("fp32", "bf16"):
            r = picture(c, s, size=args.size, precision=prec)
            if i == 0 and prec == "fp32":
                res["cold"] = {"wall": r["wall"], "since_start": time.time() - T0}
                r = picture(c, s, size=args.size, precision=prec)  # the same again, warm
            img = r.pop("image")
            r |= {"pair": name, "precision": prec, "scores": _scores(img, c, s)}
            sheet_rows[name].append(img)
            print(f"  {name} {prec}: {r['wall']:.2f} s, peak {r['peak_mb']:.0f} MiB, "
                  f"style {r['scores']['style']:.3f} SSIM {r['scores']['content']:.3f} style2 {r['scores']['style2']:.3f}",
                  flush=True)  # fmt: skip
            res["pictures"].append(r)
            dump()

    # 2. seconds per step
    c, s = next(iter(loaded.values()))
    res["steps"] = step_times(c, s, [int(x) for x in args.sizes.split(",") if x], ("fp32", "bf16", "fp16"))
    dump()

    # 3. the finished picture, in what auto picks
    res["finished"] = []
    for name, (c, s) in loaded.items():
        if left() < 60:
            break
        r = finished_run(c, s, args.size, args.finished_steps, args.every)
        sheet_rows[name].append(r.pop("image"))
        print(f"  {name}: {args.finished_steps} steps {r['wall']:.1f} s; finished at step {r['finished_step']} "
              f"({r['finished_wall']:.2f} s); step 80 within {FINISHED_TOL}: {r['step80_within']}", flush=True)  # fmt: skip
        res["finished"].append({"pair": name, **r})
        dump()
    sheet(list(sheet_rows.values()), args.out / "gpu_sheet.png")

    # 4. presets and print sizes, while time is left
    res["presets"] = []
    c, s = next(iter(loaded.values()))
    for name in ("draft", "quality"):
        if left() < 30:
            break
        r = picture(c, s, name, size=args.size)
        img = r.pop("image")
        res["presets"].append({**r, "pair": next(iter(loaded)), "scores": _scores(img, c, s)})
        print(f"  {name}: {r['wall']:.2f} s, peak {r['peak_mb']:.0f} MiB", flush=True)
        dump()
    res["prints"] = []
    last = 0.0
    for size in (int(x) for x in args.print_sizes.split(",") if x):
        if left() < max(30.0, 5 * last):  # each doubling of the side costs about four times as much
            break
        r = picture(c, s, size=size)
        img = r.pop("image")
        img.save(args.out / f"print_{size}.jpg", quality=92)
        res["prints"].append({**r, "size": size})
        last = r["wall"]
        print(f"  print {size} px: {r['wall']:.1f} s, peak {r['peak_mb']:.0f} MiB", flush=True)
        dump()
    res["total_s"] = time.time() - T0
    dump()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
