"""Where a 512 px step's time goes on a CUDA GPU, and what the W2 loss's eigendecomposition costs.

    OUT=DIR python -m benchmarks.gpu_profile

Run as it is on an NVIDIA H200 (2026-11-30; benchmarks/RESULTS.md, "On a GPU"): torch.profiler
over 12 steps of the default at 512 px (one scale, photo start), tables by GPU and by CPU time;
torch.linalg.eigh of C x C covariances (C = 64..512, the style layers' widths) in float64 and
float32 on the GPU and float64 on the host; then whole default pictures on three pairs with the
W2 loss's eigh as it is (float64 on the GPU), moved to the host, or in float32 on the GPU, with
their scores. Writes DIR/prof.json. Only the images' folder was changed since (it read a copy).
"""

import json, statistics, time
import torch
from PIL import Image
from painterly.config import preset
from painterly.stylize import stylize
import painterly.losses as L
from benchmarks.pairs import _scores, all_pairs, pair_name, select_pairs


def sync():
    torch.cuda.synchronize()


def timeit(f, n=10):
    f()
    sync()
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        f()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


from benchmarks.runner import SHARED_IMAGES

sh = f"{SHARED_IMAGES}/"
c = Image.open(sh + "content_chelsea.jpg").convert("RGB")
s = Image.open(sh + "style_starry_night.jpg").convert("RGB")
cfg = preset("default", size=512, steps=12, scales=1, init="content", preview_every=0)
stylize(c, s, cfg)
from torch.profiler import profile, ProfilerActivity

with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    stylize(c, s, cfg)
ka = prof.key_averages()
for key in ("self_device_time_total", "self_cuda_time_total"):
    try:
        print(ka.table(sort_by=key, row_limit=14, max_name_column_width=40))
        break
    except Exception as e:
        print("sort", key, e)
print(ka.table(sort_by="self_cpu_time_total", row_limit=14, max_name_column_width=40))

res = {}
for C in (64, 128, 256, 512):
    x = torch.randn(C, 4 * C, device="cuda")
    a = (x @ x.T / (4 * C)).unsqueeze(0)
    row = {
        "cuda_f64": timeit(lambda: torch.linalg.eigh(a.double())),
        "cuda_f32": timeit(lambda: torch.linalg.eigh(a)),
        "cpu_f64": timeit(lambda: torch.linalg.eigh(a.double().cpu())),
    }
    torch.set_num_threads(2)
    row["cpu_f64_2thr"] = timeit(lambda: torch.linalg.eigh(a.double().cpu()))
    torch.set_num_threads(16)
    res[C] = row
    print(C, {k: f"{v * 1e3:.2f} ms" for k, v in row.items()}, flush=True)

orig = L._TraceSqrt.forward


def make(kind):
    def fwd(ctx, a):
        if kind == "cpu":
            vals, vecs = torch.linalg.eigh(a.detach().double().cpu())
            vals, vecs = vals.to(a.device), vecs.to(a.device)
        else:
            vals, vecs = torch.linalg.eigh(a.detach().float())
            vals, vecs = vals.double(), vecs.double()
        vals = vals.clamp_min(0)
        ctx.save_for_backward(vals, vecs)
        ctx.dtype = a.dtype
        return vals.sqrt().sum(-1).to(a.dtype)

    return fwd


pairs = select_pairs("0,6,11", all_pairs())
out = {}
for kind in ("f64-gpu", "cpu", "f32-gpu"):
    L._TraceSqrt.forward = staticmethod(orig) if kind == "f64-gpu" else staticmethod(make(kind))
    for p in pairs:
        ci, si = Image.open(p[0]).convert("RGB"), Image.open(p[1]).convert("RGB")
        sync()
        t = time.perf_counter()
        img = stylize(ci, si, preset("default", size=512))
        sync()
        w = time.perf_counter() - t
        sc = _scores(img, ci, si)
        out[f"{kind} {pair_name(p)}"] = {"wall": w, **sc}
        print(
            kind, pair_name(p), f"{w:.2f} s", {k: round(sc[k], 3) for k in ("style", "content", "style2")}, flush=True
        )
L._TraceSqrt.forward = staticmethod(orig)
import os

open(os.environ["OUT"] + "/prof.json", "w").write(json.dumps({"eigh": res, "variants": out}, indent=1))
