"""The studio's decisions, as small pure functions (no Streamlit here, so they are easy to test).

What the page shows and how a person's choices become a ``StyleConfig``: the style-strength
mapping, the time estimate, which config fields the "Advanced" section generates and how,
owner tokens. The Streamlit modules only draw widgets and call these.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Literal, Sequence

from .. import precision
from ..config import PRESET_HELP, PRESETS, ConfigError, StyleConfig, fields
from ..jobs.store import new_id, valid_id
from ..plan import PlanError, RunPlan, gb

# --- presets, in words a painter would use ---------------------------------------------------

# Short titles for the preset picker; the sentence under each comes from config.PRESET_HELP,
# so a preset is described in one place. Unknown presets fall back to their own name.
PRESET_TITLES: dict[str, str] = {
    "draft": "Quick sketch",
    "default": "Balanced",
    "quality": "Best quality",
    "classic": "Classic recipe",
}
# Order on the page: fastest first.
PRESET_ORDER: tuple[str, ...] = (
    *[n for n in PRESET_TITLES if n in PRESETS],
    *[n for n in PRESETS if n not in PRESET_TITLES],
)


def preset_title(name: str) -> str:
    """'Balanced' for 'default', and so on."""
    return PRESET_TITLES.get(name, name.replace("_", " ").capitalize())


def preset_help(name: str) -> str:
    return PRESET_HELP.get(name, "")


# --- style strength ---------------------------------------------------------------------------

# One slider, 0..100, 50 = the preset as tuned. The optimum balances alpha*content against
# beta*style (Gatys et al. 2015, fig. 3 sweeps alpha/beta over decades), so the slider is
# logarithmic: each end is STRENGTH_DECADES decades weaker/stronger than the preset's beta.
STRENGTH_DEFAULT = 50
STRENGTH_DECADES = 1.0
# The slider's stops, in words: a person picks "Bold", not "beta = 0.0316".
STRENGTH_LEVELS: dict[int, str] = {
    0: "Faint",
    17: "Light",
    33: "Gentle",
    50: "Medium",
    67: "Strong",
    83: "Bold",
    100: "Wild",
}


def style_weight_for(base_style_weight: float, strength: float) -> float:
    """The style weight (beta) for a strength in 0..100; 50 keeps ``base_style_weight``."""
    return base_style_weight * 10.0 ** ((strength - STRENGTH_DEFAULT) / STRENGTH_DEFAULT * STRENGTH_DECADES)


def preview_strength(strength: float) -> float:
    """The instant preview's 0..1 strength for the slider: the network cannot go past 1."""
    return max(0.05, min(1.0, strength / STRENGTH_DEFAULT))


# --- sizes and the time estimate --------------------------------------------------------------

SIZE_CHOICES: tuple[int, ...] = (256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
TIME_CHOICES: tuple[int, ...] = (15, 30, 60, 120, 300, 600, 1200, 1800)  # seconds

# Rough cost of one optimisation step, t = STEP_OVERHEAD + STEP_SECONDS_PER_MP * megapixels.
# Measured on the 2-core development machine with one torch thread, as CPU time
# (time.process_time, so the figure holds while other jobs share the machine): steps 2..8 of
# stylize(chelsea, starry_night, preset("default", size=S, scales=1, optimizer=O)) at
# S = 192 and 384 px gave 0.41 and 1.54 s/step for L-BFGS, 0.39 and 1.50 for Adam, i.e.
# ~15 s per megapixel-step plus ~0.02 s. Both optimisers make one VGG forward+backward per
# step. With two threads on an idle machine a step is faster, on a busy one slower: the
# studio corrects the figure with this browser's finished pictures (calibration_from).
# SETUP_SECONDS covers loading the VGG and the style Gram matrices at each scale.
STEP_OVERHEAD = 0.03
STEP_SECONDS_PER_MP: dict[str, float] = {"lbfgs": 15.5, "adam": 15.0}
SETUP_SECONDS = 4.0


def estimate_seconds(config: StyleConfig, width: int, height: int, calibration: float = 1.0) -> float:
    """Rough wall-clock seconds for ``config`` on a ``width`` x ``height`` photo on this machine.

    Sums steps x per-step cost over the engine's own run plan. ``calibration`` scales the
    result (see ``calibration_from``).
    """
    work = RunPlan.build(config, width, height).seconds(lambda w, h: step_seconds(config, w, h))
    return calibration * (SETUP_SECONDS + work)


def steps_for_seconds(config: StyleConfig, width: int, height: int, seconds: float, calibration: float = 1.0) -> int:
    """The most steps that fit in ``seconds`` by ``estimate_seconds`` (at least 1)."""
    lo, hi = 1, int(_FIELDS["steps"].metadata.get("max", 100_000))
    if estimate_seconds(config.replace(steps=lo), width, height, calibration) >= seconds:
        return lo
    while lo < hi:  # the estimate grows with steps: bisect
        mid = (lo + hi + 1) // 2
        if _fits(config, width, height, mid, seconds, calibration):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _fits(config: StyleConfig, width: int, height: int, steps: int, seconds: float, calibration: float) -> bool:
    try:
        cfg = config.replace(steps=steps)
    except ConfigError:
        return False
    return estimate_seconds(cfg, width, height, calibration) <= seconds


def calibration_from(samples: Iterable[tuple[float, float]]) -> float:
    """A factor for estimate_seconds from (estimated, actual) seconds of finished runs.

    The median ratio of the last runs on this machine, clamped to 0.25..4 so one odd run
    (a busy machine, a sleeping laptop) cannot make the estimate absurd.
    """
    ratios = sorted(a / e for e, a in samples if e > 0 and a > 0)
    if not ratios:
        return 1.0
    mid = len(ratios) // 2
    median = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
    return min(4.0, max(0.25, median))


def preview_every_for(config: StyleConfig, width: int, height: int, target: float = 1.0) -> int:
    """Steps between live images so the picture updates about every ``target`` seconds.

    Judged at the finest scale, where steps are slowest; an image costs little next to a step.
    """
    return max(1, min(50, int(target / step_seconds(config, *output_size(config, width, height)))))


def step_seconds(config: StyleConfig, width: int, height: int) -> float:
    per_mp = STEP_SECONDS_PER_MP.get(config.optimizer, max(STEP_SECONDS_PER_MP.values()))
    # The workers run on this machine's CPU: bf16 where it has the units (precision.py decides).
    per_mp *= precision.STEP_COST[precision.resolve(config.precision, "cpu")]
    return STEP_OVERHEAD + per_mp * width * height / 1e6


def memory_note(config: StyleConfig, width: int, height: int) -> tuple[bool, str]:
    """(fits, one line): the run plan's memory for this picture on this machine, or why it cannot run."""
    try:
        mem = RunPlan.build(config, width, height).memory(config)
    except PlanError as e:
        return False, str(e)
    last = mem.scales[-1]
    how = f", the full size in {last.tiles} blocks of {last.block} px" if last.block else ""
    return True, f"Memory: about {gb(mem.peak)} of the {gb(mem.budget)} this machine can spare{how}."


def output_size(config: StyleConfig, width: int, height: int) -> tuple[int, int]:
    """The size of the finished picture for a ``width`` x ``height`` photo (aspect kept)."""
    return RunPlan.build(config, width, height).final_size


def format_clock(seconds: float | None) -> str:
    """'45 s', '7:05', '1:02:07': short enough for a metric tile; an em dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_duration(seconds: float | None) -> str:
    """'45 s', '3 min 20 s', '1 h 05 min'; an em dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m} min {s:02d} s" if s else f"{m} min"
    h, rem = divmod(s, 3600)
    return f"{h} h {rem // 60:02d} min"


_FIELDS = {f.name: f for f in fields()}


# --- the generated "Advanced" section ---------------------------------------------------------

# Fields the main controls set (so the Advanced section does not offer them twice).
MAIN_FIELDS: dict[str, str] = {
    "size": "Output size",
    "steps": "Time or steps",
    "style_weight": "Style strength",
    "color": "Colours",
    "color_strength": "Colours",
    "style_blend": "the blend sliders under the paintings",
    "preview_every": "set so the picture updates about once a second",
}
# Fields that are the server's business, never a web visitor's: ``weights`` is a path on the
# server (loading a user-named file would read, and unpickle, arbitrary server files);
# ``device`` and ``threads`` belong to whoever runs the workers.
SERVER_FIELDS: frozenset[str] = frozenset({"weights", "device", "threads"})
# Choices the studio cannot honour: it has no upload for a separate start image.
HIDDEN_CHOICES: dict[str, frozenset[str]] = {"init": frozenset({"image"})}

WidgetKind = Literal["checkbox", "select", "multiselect", "int", "float", "numbers", "text"]


def advanced_fields() -> list[dataclasses.Field]:
    """StyleConfig's fields the Advanced section shows, in declaration order."""
    return [f for f in fields() if f.name not in MAIN_FIELDS and f.name not in SERVER_FIELDS]


def widget_kind(f: dataclasses.Field) -> WidgetKind:
    """Which widget edits a field, from its default's type and its metadata."""
    kind = type(f.default)
    if kind is bool:
        return "checkbox"
    if kind is tuple:
        return "multiselect" if "choices" in f.metadata else "numbers"
    if "choices" in f.metadata:
        return "select"
    if kind is int:
        return "int"
    if kind is float:
        return "float"
    return "text"


def choices(f: dataclasses.Field) -> list[Any]:
    """The choices a field offers on the page."""
    hidden = HIDDEN_CHOICES.get(f.name, frozenset())
    return [c for c in f.metadata.get("choices", ()) if c not in hidden]


_ABBREVIATIONS = {"lr": "learning rate (lr)", "tv": "TV"}


def label(f: dataclasses.Field) -> str:
    """'style_layer_weights' -> 'Style layer weights', 'tv_weight' -> 'TV weight'."""
    text = " ".join(_ABBREVIATIONS.get(w, w) for w in f.name.split("_"))
    return text[0].upper() + text[1:]


def parse_numbers(text: str, name: str) -> tuple[float, ...]:
    """'0.2, 0.3 0.5' -> (0.2, 0.3, 0.5); empty -> (); anything else raises ConfigError."""
    parts = [p for p in re.split(r"[,\s;]+", text.strip()) if p]
    try:
        return tuple(float(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{name}: write numbers separated by commas, e.g. 0.2, 0.3, 0.5") from None


def format_numbers(values: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in values)


def settings_summary(config: StyleConfig) -> dict[str, Any]:
    """The settings that differ from StyleConfig's defaults, for the job page's short list."""
    base = StyleConfig()
    return {f.name: getattr(config, f.name) for f in fields() if getattr(config, f.name) != getattr(base, f.name)}


# --- who owns what -----------------------------------------------------------------------------


def new_owner_token() -> str:
    """An unguessable token naming one browser's gallery (an id like a job's)."""
    return new_id()


def valid_token(value: object) -> bool:
    """Whether a value from the URL can be an owner token or job id (the store's one id rule)."""
    return valid_id(value)
