"""The same look at every size: the default preset at 512, 1024 and 2048 px, side by side.

    python -m benchmarks.sizes [--pair chelsea__starry] [--sizes 512,1024,2048]

Auto scales start every size from the same 512 px picture (``config.MIN_AUTO_SCALE``), so the
strokes should keep their size relative to the picture. The sheet ``benchmarks/sizes.png``
shows each result scaled to one width, then the same crop (a fifth of the picture's width, at
the centre) from each at its own resolution scaled to one size, so the stroke sizes compare
directly. The instant preview (the studio's first look) comes first. Writes nothing else;
prints the time and the plan of each run.
"""

from __future__ import annotations

import argparse
import time

from PIL import Image, ImageDraw

from .pairs import all_pairs, pair_name, select_pairs
from .runner import REPO

THUMB = 480


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sizes", description=__doc__.split("\n\n")[0])
    p.add_argument("--pair", default="chelsea__starry", help="a pair by index or part of its name")
    p.add_argument("--sizes", default="512,1024,2048")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "sizes.png"))
    args = p.parse_args(argv)

    from painterly.config import preset
    from painterly.plan import RunPlan
    from painterly.stylize import stylize

    pair = select_pairs(args.pair, all_pairs())[0]
    content, style = Image.open(pair[0]).convert("RGB"), Image.open(pair[1]).convert("RGB")
    from painterly.preview import preview

    t0 = time.perf_counter()
    results: list[tuple[str, Image.Image, float]] = [("preview 512", preview(content, style, size=512), 0.0)]
    results[0] = (results[0][0], results[0][1], time.perf_counter() - t0)
    for size in (int(s) for s in args.sizes.split(",")):
        cfg = preset("default", size=size)
        plan = RunPlan.build(cfg, *content.size, n_styles=1)
        t0 = time.perf_counter()
        out = stylize(content, style, cfg)
        took = time.perf_counter() - t0
        print(f"{pair_name(pair)} at {size} px: {took:.0f} s, scales {[(max(wh), n) for wh, n in plan.scales]}")
        results.append((f"{size} px", out, took))

    crop_side = THUMB // 2
    label = 16
    sheet = Image.new("RGB", (len(results) * (THUMB + 6), label + 2 * (THUMB + label)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (size, img, took) in enumerate(results):
        x = i * (THUMB + 6)
        whole = img.resize((THUMB, round(img.height * THUMB / img.width)), Image.Resampling.LANCZOS)
        sheet.paste(whole, (x, label))
        draw.text((x + 2, 2), f"{size}, whole", fill="black")
        side = img.width // 5  # the same fifth of the picture at every size
        cx, cy = img.width // 2, img.height // 2
        crop = img.crop((cx - side // 2, cy - side // 2, cx + side // 2, cy + side // 2))
        y = label + whole.height + 4
        draw.text((x + 2, y), f"{size}: centre crop, 1/5 of the width ({side} px)", fill="black")
        sheet.paste(crop.resize((crop_side * 2, crop_side * 2), Image.Resampling.LANCZOS), (x, y + label))
    tallest = max(r[1].height * THUMB // r[1].width for r in results)
    sheet = sheet.crop((0, 0, sheet.width, label + tallest + 4 + label + 2 * crop_side))
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)  # ~1 MB, not 2.6
    print(f"sheet: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
