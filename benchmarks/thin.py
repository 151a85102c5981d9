"""Close-ups of a twelve-pair grid where each photo's thin structures are (issue 13, "content that
holds at every size"): the photo's densest window of ``quality.thin_mask``, cut from the photo and
from every run of every pair, enlarged, with each run's ``thin`` score.

    python -m benchmarks.thin benchmarks/results/pairs_256_thin.json [-o benchmarks/thin_256.png]

The window is chosen by the measure's own mask on the photo (not by hand), so the close-ups show
what the ``thin`` column scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from . import quality


def densest_window(photo: Image.Image, size: tuple[int, int], side: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the ``side`` px square of the photo at ``size`` holding the
    most thin-structure pixels (``quality.thin_mask``)."""
    lum = np.asarray(photo.convert("L").resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    mask = quality.thin_mask(lum).astype(np.float64)
    side = min(side, *size)
    c = np.pad(mask.cumsum(0).cumsum(1), ((1, 0), (1, 0)))  # summed-area table
    sums = c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]
    top, left = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(left), int(top), int(left) + side, int(top) + side


def close_ups(res: dict, path: Path, side: int = 80, zoom: int = 3) -> Path:
    """One row per pair: the photo's window, then each run's, ``zoom`` times enlarged."""
    label, cell = 26, side * zoom
    rows = []
    for p in res["pairs"]:
        runs = list(p["runs"].items())
        size = Image.open(runs[0][1]["output"]).size
        photo = Image.open(p["content_path"]).convert("RGB")
        box = densest_window(photo, size, side)
        cells = [(f"photo {p['pair']}", photo.resize(size, Image.Resampling.LANCZOS).crop(box), None)]
        cells += [(n, Image.open(r["output"]).convert("RGB").crop(box), r["scores"].get("thin")) for n, r in runs]
        rows.append(cells)
    width = max(len(r) for r in rows) * (cell + 4)
    sheet = Image.new("RGB", (width, len(rows) * (cell + label + 4)), "white")
    draw = ImageDraw.Draw(sheet)
    for ri, row in enumerate(rows):
        y = ri * (cell + label + 4)
        for ci, (name, img, thin) in enumerate(row):
            x = ci * (cell + 4)
            sheet.paste(img.resize((cell, cell), Image.Resampling.LANCZOS), (x, y + label))
            draw.text((x + 2, y + 1), name, fill="black")
            if thin is not None:
                draw.text((x + 2, y + 13), f"thin {thin:.2f}", fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # as pairs' sheets: ~1 MB
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.thin", description=__doc__.split("\n\n")[0])
    p.add_argument("grid", type=Path, help="a grid's JSON from benchmarks.pairs (results/pairs_<size>[_<name>].json)")
    p.add_argument("-o", "--out", type=Path, default=None, help="default: benchmarks/thin_<grid's size>.png")
    p.add_argument("--side", type=int, default=80, help="window side in the output's pixels")
    args = p.parse_args(argv)
    res = json.loads(args.grid.read_text())
    out = args.out or Path(__file__).resolve().parent / f"thin_{res['size']}.png"
    print(close_ups(res, out, args.side))
    return 0


if __name__ == "__main__":
    sys.exit(main())
