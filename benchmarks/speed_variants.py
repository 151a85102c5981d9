"""A/B timing of implementation variants of one optimisation step (forward + backward to the image).

    python -m benchmarks.speed_variants [--size 512] [--rounds 3]

The variants are interleaved round by round (A B C ... A B C ...) and each is reported by its
fastest round, so that load from other processes on a shared machine hits all of them alike.
Each variant computes the same loss (checked) with the default preset's layers.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import torch
import torch.nn.functional as F

from painterly import plan
from painterly.losses import content_loss, gram_matrix, style_loss
from painterly.vgg import get_vgg

CL = ("relu4_2",)
SL = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def gram_bmm(x: torch.Tensor) -> torch.Tensor:
    """The plain Gram: (B, C, M) bmm (B, M, C), autograd's own backward."""
    b, c, h, w = x.shape
    f = x.reshape(b, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


def forward(net, x, wanted, inplace: bool):
    """The kept variant is the engine's own forward; the plain one runs every layer out of place."""
    if inplace:
        return net(x, wanted)
    x = net.normalize(x).contiguous(memory_format=net.memory_format)
    out = {}
    for name, layer in zip(net.names, net.layers):
        x = F.relu(x) if name.startswith("relu") else layer(x)
        if name in wanted:
            out[name] = x
            if len(out) == len(wanted):
                break
    return out


def make_step(net, size: int, *, inplace: bool, symgram: bool, compiled: bool = False, recompute: bool = True):
    layers = tuple(dict.fromkeys(CL + SL))
    gram = gram_matrix if symgram else gram_bmm  # painterly's: (M, C) layout, one-product backward
    g = torch.Generator().manual_seed(0)
    with torch.inference_mode():
        t = torch.rand(1, 3, size, size, generator=g)
        f = net(t, layers)
        ct = {k: f[k].clone() for k in CL}
        st = {k: gram_matrix(f[k]) for k in SL}
    x = torch.rand(1, 3, size, size, generator=g).requires_grad_(True)

    def loss_of(x: torch.Tensor) -> torch.Tensor:
        feats = forward(net, x, set(layers), inplace)
        return sum(content_loss(feats[k], ct[k], "mean") for k in CL) + 5e-3 * sum(
            0.2 * style_loss(gram(feats[k]), st[k]) for k in SL
        )

    # torch.compile (inductor, C++ on CPU) of forward + losses; backward through its AOT graph.
    fn = torch.compile(loss_of, dynamic=False) if compiled else loss_of

    def step() -> float:
        x.grad = None
        limit = plan.CHECKPOINT_PIXELS
        if not recompute:  # keep every activation, however large the image (vgg.VGG19.forward)
            plan.CHECKPOINT_PIXELS = 1 << 62
        try:
            loss = fn(x)
            loss.backward()
        finally:
            plan.CHECKPOINT_PIXELS = limit
        return float(loss.detach())

    return step


def set_malloc(on: bool) -> None:
    """glibc: keep big freed blocks instead of returning them to the OS (and re-faulting them)."""
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    if on:
        libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(M_TRIM_THRESHOLD, 1 << 31 - 1)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--malloc", action="store_true", help="apply the mallopt setting to every variant")
    p.add_argument("--compile", action="store_true", help="add torch.compile of the kept variant (compile time reported)")
    p.add_argument("--variants", default="", help="comma-separated subset to run, e.g. 'both,no recompute'")
    args = p.parse_args()
    torch.set_num_threads(2)
    set_malloc(args.malloc)
    net = get_vgg("relu5_1", "max")
    variants = {
        "plain": make_step(net, args.size, inplace=False, symgram=False),
        "inplace relu": make_step(net, args.size, inplace=True, symgram=False),
        "sym gram": make_step(net, args.size, inplace=False, symgram=True),
        "both": make_step(net, args.size, inplace=True, symgram=True),
    }
    # Above plan.CHECKPOINT_PIXELS (2 megapixels) the kept forward recomputes two runs of layers to save memory.
    variants["no recompute"] = make_step(net, args.size, inplace=True, symgram=True, recompute=False)
    if args.compile:
        variants["compiled"] = make_step(net, args.size, inplace=True, symgram=True, compiled=True)
    if args.variants:
        keep = {v.strip() for v in args.variants.split(",")} | {"plain"}
        variants = {k: v for k, v in variants.items() if k in keep}
    losses = {}
    for k, v in variants.items():  # warm-up (compiles), and the losses must agree
        t = time.perf_counter()
        losses[k] = v()
        if k == "compiled":
            print(f"torch.compile: first step (compiling) took {time.perf_counter() - t:.1f} s")
    print("losses", {k: f"{v:.6g}" for k, v in losses.items()})
    best = {k: float("inf") for k in variants}
    cpu = {k: float("inf") for k in variants}  # process CPU time: less disturbed by other processes
    for _ in range(args.rounds):
        for k, step in variants.items():
            t, c = time.perf_counter(), time.process_time()
            step()
            best[k] = min(best[k], time.perf_counter() - t)
            cpu[k] = min(cpu[k], time.process_time() - c)
    for k, t in best.items():
        print(f"{k:14s} wall {t:.3f} s ({t / best['plain'] * 100:.0f} % of plain)   "
              f"CPU {cpu[k]:.3f} s ({cpu[k] / cpu['plain'] * 100:.0f} %)")


if __name__ == "__main__":
    main()
