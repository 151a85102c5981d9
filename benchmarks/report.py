"""Markdown tables from the measured figures, and writing them between RESULTS.md's markers."""

from __future__ import annotations

import re
from pathlib import Path


def _busy(cores: float) -> str:
    return f"{cores:.1f}" + (" (busy)" if cores >= 0.3 else "")


def _head(res: dict) -> str:
    m = res["machine"]
    return (f"Measured {m['date']} on {m['cpu']}, {m['cores']} cores, {m['threads']} threads, torch {m['torch']}, "
            f"Python {m['python']}. Command: `{res['command'].strip()}`.")  # fmt: skip


def _second(s: dict) -> str:
    """The network-free second opinion of a score dict, or blank for runs scored before it existed."""
    if s.get("style2") is None:
        return ""
    return f"{s['style2']:.2f} ({s['colour']:.1f} / {s['texture']:.3f})"


def compare_md(res: dict, sheet: str) -> str:
    """The side-by-side table and the time-to-quality table."""
    lines = [f"### Side by side at {res['size']} px ({res['source']})", "", _head(res), ""]
    if res["skipped"]:
        lines += ["Skipped: " + "; ".join(res["skipped"]) + ".", ""]
    lines += [
        "| pair | engine | wall s | CPU s | peak RSS MB | others' cores | style score | content SSIM | ref. content loss | ref. style loss | 2nd opinion: style2 (colour / texture) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for pr in res["pairs"]:
        pair = f"{pr['content']} × {pr['style']}"
        for eng, r in pr["runs"].items():
            s = r["scores"]
            name = eng + (f" (run of {r['cached']})" if r.get("cached") else "")
            if not s:
                lines.append(f"| {pair} | {name} | {r['wall']:.1f} | | | | failed | | | | |")
                continue
            lines.append(
                f"| {pair} | {name} | {r['wall']:.1f} | {r['cpu']:.0f} | {r['peak_rss_mb']:.0f} | {_busy(r['others_cores'])} | "
                f"{s['style']:.3f} | {s['content']:.3f} | {s['gatys_content']:.3g} | {s['gatys_style']:.3g} | {_second(s)} |"
            )  # fmt: skip
    lines += ["", f"**Time for our `default` to reach each baseline's quality** (style score ≥ the baseline's, "
              f"content SSIM ≥ the baseline's − {res['tol']}), from process start, as a fraction of the baseline's time:",
              "", "| pair | baseline | baseline wall s | reached at step | our wall s | wall ratio | CPU ratio | "
              "ours there: style / SSIM | ref. style loss there (baseline's) | also by ref. style loss: step, wall ratio, CPU ratio | "
              "also by the 2nd opinion (style2 ≤ baseline's): step, wall ratio, CPU ratio |",
              "|---|---|---:|---:|---:|---:|---:|---|---|---|---|"]  # fmt: skip
    for pr in res["pairs"]:
        pair = f"{pr['content']} × {pr['style']}"
        for base, reach in pr["reach"].items():
            b = pr["runs"][base]
            if reach is None:
                d = pr["runs"]["default"]["scores"]
                lines.append(f"| {pair} | {base} | {b['wall']:.0f} | not reached (ours ended at style "
                             f"{d.get('style', float('nan')):.3f}, content {d.get('content', float('nan')):.3f}) | | | | | | | |")  # fmt: skip
            else:
                there = f"{reach['style']:.3f} / {reach['content']:.3f}" if "style" in reach else ""
                ref = (f"{reach['gatys_style']:.3g} ({b['scores'].get('gatys_style', float('nan')):.3g})"
                       if "gatys_style" in reach else "")  # fmt: skip
                st = reach.get("strict")
                strict = (f"{st['step']}, 1/{1 / st['wall_ratio']:.1f}, 1/{1 / st['cpu_ratio']:.1f}" if st
                          else ("never (style score and SSIM rule met, Gram loss not)" if "strict" in reach else ""))  # fmt: skip
                bo = reach.get("both")
                both = (f"{bo['step']}, 1/{1 / bo['wall_ratio']:.1f}, 1/{1 / bo['cpu_ratio']:.1f}" if bo
                        else ("never (style score and SSIM rule met, style2 not)" if "both" in reach else ""))  # fmt: skip
                lines.append(f"| {pair} | {base} | {b['wall']:.0f} | {reach['step']} | {reach['wall']:.1f} | "
                             f"1/{1 / reach['wall_ratio']:.1f} | 1/{1 / reach['cpu_ratio']:.1f} | {there} | {ref} | {strict} | {both} |")  # fmt: skip
    lines += ["", f"Outputs: [`{sheet}`]({sheet}) (content, style, then each engine's result)."]
    return "\n".join(lines)


def ceiling_md(res: dict) -> str:
    c = res["ceiling"]
    lines = [_head(res), "", "Convolution throughput (3×3, forward + input gradient, fp32, channels_last) on VGG19's "
             "shapes for a 512 px input:", "", "| Cin→Cout | H=W | ms | GFLOP/s | CPU ms | GFLOP per CPU-s |",
             "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in c["shapes"]:
        lines.append(f"| {r['cin']}→{r['cout']} | {r['hw']} | {r['seconds'] * 1e3:.0f} | {r['gflops']:.0f} | "
                     f"{r['cpu_seconds'] * 1e3:.0f} | {r['gflop_per_cpu_s']:.0f} |")  # fmt: skip
    lines += ["", f"Ceiling (best shape): **{c['ceiling_gflops']:.0f} GFLOP/s** wall, "
              f"**{c['ceiling_gflop_per_cpu_s']:.0f} GFLOP per CPU-second**. Other processes used "
              f"{_busy(res.get('others_cores', float('nan')))} cores on average meanwhile.", "",
              "| size | GFLOP per step | of which conv | step s | GFLOP/s | fraction of ceiling (wall) | step CPU s | fraction of ceiling (CPU) |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in res["steps"]:
        lines.append(f"| {r['size']} | {r['gflop']:.0f} | {r['conv_gflop']:.0f} | {r['step_s']:.2f} | "
                     f"{r['gflops']:.0f} | {r['fraction'] * 100:.0f} % | {r['step_cpu_s']:.2f} | "
                     f"{r['fraction_cpu'] * 100:.0f} % |")  # fmt: skip
    return "\n".join(lines)


def memory_md(res: dict) -> str:
    lines = [_head(res), "", f"Default preset cut to a few steps, {res['pair'][0]} × {res['pair'][1]}:", "",
             "| size | steps | ok | wall s | peak RSS MB | others' cores | measured |", "|---:|---:|---|---:|---:|---:|---|"]  # fmt: skip
    for r in res["rows"]:
        lines.append(f"| {r['size']} | {r['steps']} | {'yes' if r['ok'] else 'FAILED'} | {r['wall']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} | {_busy(r['others_cores'])} | {r.get('date', '')} |")  # fmt: skip
    return "\n".join(lines)


def write_block(path: Path, name: str, text: str) -> None:
    """Replace the text between <!-- auto:NAME --> and <!-- /auto:NAME --> (appending the block if absent)."""
    start, end = f"<!-- auto:{name} -->", f"<!-- /auto:{name} -->"
    doc = path.read_text() if path.is_file() else "# Benchmark results\n"
    block = f"{start}\n{text}\n{end}"
    if start in doc and end in doc:
        doc = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _: block, doc, flags=re.S)
    else:
        doc = doc.rstrip("\n") + f"\n\n{block}\n"
    path.write_text(doc)
