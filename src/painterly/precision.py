"""Which arithmetic the VGG convolutions run in: decided once per process, from the hardware.

Nearly all of a run's time is VGG19's convolutions (forward and backward), and fp32 already
runs near the machine's convolution ceiling (benchmarks/RESULTS.md). bf16 halves the bytes and,
on CPUs with AMX or AVX512-BF16 units, runs oneDNN's bf16 kernels about twice as fast (measured
2.0-2.2x per 512 px step on such a Xeon). On CPUs without them bf16 is emulated and 10-100x
slower, so ``auto`` must never pick it there. GPUs: bf16 where supported (Ampere and newer);
fp16 only when asked for, since Gram matrices overflow fp16 (they are computed in fp32 here).

Only the convolutions run in low precision (``torch.autocast``). Every statistic and loss
reads their activations in fp32 (``losses.wide``), and the image and the optimiser's state stay
fp32; the statistics' gradient goes back in bf16, which the convolutions' backward would cast
it to anyway (``losses._Sums``).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch is imported where it is used: the studio's time estimate asks here too
    import torch

Precision = Literal["fp32", "bf16", "fp16"]
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")

# Cost of a step relative to fp32, for estimates made before a run (the studio's); front ends
# that time the run itself (the CLI's and the worker's ETA) need no factor. Measured with
# `python -m benchmarks --only precision` (benchmarks/RESULTS.md, "Precision").
# bf16: 0.50 / 0.36 / 0.31 at 256 / 512 / 1024 px on a Xeon with AMX (2026-12-01, the statistics'
# gradient in bf16 too; 0.43-0.52 before it).
STEP_COST: dict[str, float] = {"fp32": 1.0, "bf16": 0.36, "fp16": 0.5}
# How front ends name the precision a run used (Progress.precision, Job.precision).
WORDS: dict[str, str] = {
    "fp32": "full precision (fp32)",
    "bf16": "bfloat16 on the processor's bf16 units, about twice as fast (bf16)",
    "fp16": "half precision (fp16)",
}


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them (empty where /proc/cpuinfo is absent)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with bf16 units (AMX or AVX512-BF16), which torch's oneDNN kernels use."""
    return any(flag in cpu_flags() for flag in CPU_BF16_FLAGS)


def cuda_has_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


@functools.cache
def resolve(name: str, device_type: str) -> Precision:
    """The precision a run uses: ``name`` unless it is "auto", then the hardware's best.

    Cached: the hardware does not change while the process runs.
    """
    if name != "auto":
        return name  # type: ignore[return-value]
    if device_type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if device_type == "cuda":
        return "bf16" if cuda_has_bf16() else "fp32"
    return "fp32"


def check(precision: Precision, device_type: str) -> None:
    """Refuse what cannot run well: fp16 on a CPU (emulated there; bf16 is the CPU's half precision)."""
    if precision == "fp16" and device_type == "cpu":
        raise ValueError("precision fp16 is for GPUs; on a CPU use bf16 or fp32 (or auto)")


def autocast(precision: Precision, device_type: str) -> torch.autocast:
    """The context the VGG forward runs in (a no-op for fp32); refuses what ``check`` refuses."""
    import torch

    check(precision, device_type)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return torch.autocast(device_type, dtype=dtype or torch.float32, enabled=dtype is not None)
