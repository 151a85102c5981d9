"""The studio's decisions, as small pure functions (no Streamlit here, so they are easy to test).

What the page shows and how a person's choices become a ``StyleConfig``: the style-strength
mapping, the time estimate, which config fields the "Advanced" section generates and how,
owner tokens. The Streamlit modules only draw widgets and call these.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Iterable, Literal, Optional, Sequence

from ..config import PRESET_HELP, PRESETS, ConfigError, StyleConfig, VideoConfig, fields
from ..images import ImageError
from ..jobs.health import WORDS as DISK_WORDS
from ..jobs.store import Job, new_id, valid_id
from ..plan import DEFAULT_STEP_COST, PlanError, RunPlan, StepCost, gb

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
# 1.5 decades (x3.2 a notch): every notch a visibly different picture, Faint nearly the photo
# and Wild nearly the painting's texture; at 1 decade Strong was hardly Medium (benchmarks/
# RESULTS.md, "Style strength").
STRENGTH_DEFAULT = 50
STRENGTH_DECADES = 1.5
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


def base_style_weight(style_weight: float, strength: float) -> float:
    """The weight that ``style_weight_for`` turned into ``style_weight`` at ``strength``."""
    return style_weight / style_weight_for(1.0, strength)


def strength_notch(value: object) -> int:
    """A stored strength as a notch of the slider (Medium when missing or not a notch)."""
    return value if isinstance(value, int) and value in STRENGTH_LEVELS else STRENGTH_DEFAULT


# The instant preview's strength per notch. The network's strength interpolates its style
# embedding from the photo's own (0) to the painting's (1), and saturates there: past 1 the
# pictures barely change (looked at, 1.0 to 2.0), so the notches share 0.3..1 and each one is
# its own picture (Strong, Bold and Wild used to all be 1.0: byte-identical previews). The curve
# bends up, so Medium's sketch (0.77) sits nearer the full-strength preview that every run
# starts from (init="preview"): a linear 0.25..1 put it at 0.63, visibly tamer than its result.
PREVIEW_FAINTEST = 0.3
PREVIEW_BEND = 1.6


def preview_strength(strength: float) -> float:
    """The instant preview's 0..1 strength for a notch: rising at every notch, 1 at Wild."""
    x = max(0.0, min(100.0, strength)) / 100.0
    return PREVIEW_FAINTEST + (1.0 - PREVIEW_FAINTEST) * (1.0 - (1.0 - x) ** PREVIEW_BEND)


# --- sizes, steps and the time estimate -------------------------------------------------------

SIZE_CHOICES: tuple[int, ...] = (256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192)
TIME_CHOICES: tuple[int, ...] = (15, 30, 60, 120, 300, 600, 1200, 1800)  # seconds
# The steps a person picks from: about 1.3-1.5x apart, so every notch of the slider matters
# (a linear 10..2000 slider put the default 80 in its first 4 %, out of a mouse's reach).
STEP_CHOICES: tuple[int, ...] = (10, 20, 30, 40, 50, 60, 80, 100, 120, 150, 200, 300, 400, 500, 700, 1000, 1500, 2000)


# A video's frames are each a picture: the sizes offered stop where a short clip still takes
# minutes, not hours (README, "Video": 3-5 s a later frame at 256-512 px on a 2-core laptop).
VIDEO_SIZE_CHOICES: tuple[int, ...] = tuple(s for s in SIZE_CHOICES if s <= 768)


def size_choices(current: int, video: bool = False) -> list[int]:
    """The size slider's notches (a video's are fewer), with ``current`` among them when it fits."""
    if video:
        return sorted(set(VIDEO_SIZE_CHOICES) | ({current} if current <= VIDEO_SIZE_CHOICES[-1] else set()))
    return sorted(set(SIZE_CHOICES) | {current})


def step_choices(current: int) -> list[int]:
    """The steps slider's notches, with ``current`` (a preset's or an earlier job's) among them."""
    return sorted(set(STEP_CHOICES) | {current})


def estimate_seconds(
    config: StyleConfig, width: int, height: int, calibration: float = 1.0, cost: StepCost = DEFAULT_STEP_COST
) -> float:
    """Wall-clock seconds for ``config`` on a ``width`` x ``height`` photo on this machine.

    The run plan's estimate with ``cost`` (this machine's, measured at start-up), times
    ``calibration`` (see ``calibration_from``).
    """
    return calibration * RunPlan.build(config, width, height).estimate(config, cost)


def steps_for_seconds(
    config: StyleConfig,
    width: int,
    height: int,
    seconds: float,
    calibration: float = 1.0,
    cost: StepCost = DEFAULT_STEP_COST,
) -> int:
    """The most steps that fit in ``seconds`` by ``estimate_seconds`` (at least 1)."""
    lo, hi = 1, int(_FIELDS["steps"].metadata.get("max", 100_000))
    if estimate_seconds(config.replace(steps=lo), width, height, calibration, cost) >= seconds:
        return lo
    while lo < hi:  # the estimate grows with steps: bisect
        mid = (lo + hi + 1) // 2
        if _fits(config.replace(steps=mid), width, height, seconds, calibration, cost):
            lo = mid
        else:
            hi = mid - 1
    return lo


def estimate_video_seconds(
    config: StyleConfig,
    video: VideoConfig,
    width: int,
    height: int,
    frames: int,
    calibration: float = 1.0,
    cost: StepCost = DEFAULT_STEP_COST,
) -> tuple[float, float]:
    """(first frame, each later frame) in seconds: the first runs ``config`` as a picture, the
    others ``video.later_frames(config)`` at the output size (shot changes would add first frames)."""
    first = estimate_seconds(config, width, height, calibration, cost)
    w, h = output_size(config, width, height)
    later = estimate_seconds(video.later_frames(config), w, h, calibration, cost) if frames > 1 else 0.0
    return first, later


def _fits(config: StyleConfig, width: int, height: int, seconds: float, calibration: float, cost: StepCost) -> bool:
    return estimate_seconds(config, width, height, calibration, cost) <= seconds


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


def preview_every_for(
    config: StyleConfig, width: int, height: int, target: float = 1.0, cost: StepCost = DEFAULT_STEP_COST
) -> int:
    """Steps between live images so the picture updates about every ``target`` seconds.

    Judged at the finest scale, where steps are slowest; an image costs little next to a step.
    """
    return max(1, min(50, int(target / cost.step_seconds(config, *output_size(config, width, height)))))


def remaining_seconds(job: Job, cost: StepCost, now: float) -> Optional[float]:
    """Seconds left of a running job, ``now`` (epoch seconds): the plan's figure when its row was
    last written, less the time since, so the clock ticks down between the worker's writes."""
    if job.is_video:  # the worker's ETA (time per frame times the frames left), ticking down
        if job.status != "running" or job.eta is None:
            return None
        return max(0.0, job.eta - (max(0.0, now - job.updated) if job.updated else 0.0))
    if job.status != "running" or job.step <= 0:
        return None
    try:
        plan = RunPlan.build(job.config, job.width, job.height)
    except (ConfigError, ImageError):
        return job.eta
    since = max(0.0, now - job.updated) if job.updated else 0.0
    return max(0.0, plan.remaining(job.config, cost, job.step, job.elapsed) - since)


# A running job's worker writes its row several times a second; on a full or read-only disk it
# cannot, and waits to put the job back in the queue. This long without a write, with the disk in
# such a state, the job is shown paused, not painting with a clock that runs on.
STALLED_AFTER = 10.0


def paused_by_disk(problem: Optional[str], updated: float, now: float) -> bool:
    """Whether a running job is held up by the disk: ``problem`` (full, read-only) is set and
    the job's row (``updated``) has not changed for ``STALLED_AFTER`` s."""
    return problem is not None and updated > 0 and now - updated > STALLED_AFTER


def planned_seconds(job: Job, cost: StepCost, now: float, calibration: float = 1.0) -> float:
    """Seconds a job ahead still holds a worker: the plan's time left of a running one, the
    whole planned time of a queued one (its setup included), 0 for one the plan cannot read."""
    try:
        plan = RunPlan.build(job.config, job.width, job.height)
    except (ConfigError, ImageError):
        return 0.0
    if job.status == "running" and job.step > 0:
        left = remaining_seconds(job, cost, now)
        return left if left is not None else 0.0
    full = calibration * plan.estimate(job.config, cost)
    if job.status == "running" and job.started:  # setting up: the time it has had counts
        return max(0.0, full - (now - job.started))
    return full


def wait_seconds(ahead: Sequence[Job], cost: StepCost, now: float, workers: int = 1, calibration: float = 1.0) -> float:
    """Seconds until a picture behind ``ahead`` (``JobStore.ahead``: running jobs, then the queue
    in order) starts: each job's ``planned_seconds`` on the first of ``workers`` to come free."""
    free = [0.0] * max(1, workers)
    for job in ahead:  # running jobs first, so each keeps the worker it holds
        i = free.index(min(free))
        free[i] += planned_seconds(job, cost, now, calibration)
    return min(free)


def queue_words(n_ahead: int) -> str:
    """'2 pictures ahead of yours', '1 picture ahead of yours'."""
    return f"{n_ahead} picture{'s' if n_ahead != 1 else ''} ahead of yours"


def memory_note(config: StyleConfig, width: int, height: int) -> tuple[bool, str]:
    """(fits, one line): the run plan's memory for this picture on this machine, or why it cannot run."""
    try:
        mem = RunPlan.build(config, width, height).memory(config)
    except PlanError as e:
        return False, str(e)
    last = mem.scales[-1]
    how = f", the full size in {last.tiles} blocks of {last.block} px" if last.block else ""
    return True, f"Memory: about {gb(mem.peak)}{mem.kept_note} of the {gb(mem.budget)} this machine can spare{how}."


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


def owner_choice(from_url: object, from_cookie: object) -> tuple[str, bool]:
    """(this visit's owner token, whether the browser's cookie must be written).

    The link's ``me=`` wins, in any browser (a bookmark, or the link sent to oneself on another
    computer; that browser then keeps it). Without one, the browser's own cookie (a typed
    address, a fresh tab) finds its gallery again; a browser with neither gets a new token.
    Cookies are per browser, so two browsers never share a gallery unless a link says so.
    """
    if valid_token(from_url):
        return str(from_url), from_url != from_cookie
    if valid_token(from_cookie):
        return str(from_cookie), False
    return new_owner_token(), True


# --- the gallery, in words ---------------------------------------------------------------------


def paused_words(problem: str) -> str:
    """'Paused: the disk is full': a running job the disk holds up, on its page and in the gallery."""
    return f"Paused: {DISK_WORDS[problem]}"


def job_status(job: Job, ahead: Optional[int] = None, paused: Optional[str] = None) -> str:
    """How a job stands or ended, in a few words: 'Painting: 45 %', 'Finished in 1 min 20 s',
    'Stopped at step 40 of 80'. ``ahead``: pictures before it in the queue, when queued;
    ``paused``: the disk problem holding up a running job (``paused_by_disk``), else None."""
    if job.status == "queued":
        if job.cancel_requested:
            return "Stopping"
        return "Waiting: next in line" if not ahead else f"Waiting: {ahead} ahead"
    if job.status == "running":
        if job.cancel_requested:
            return "Stopping…"
        if paused is not None:
            return paused_words(paused)
        if job.is_video:
            return f"Painting: frame {min(job.step + 1, job.steps)} of {job.steps}"
        return f"Painting: {round(100 * job.fraction)} %"
    if job.status == "done":
        if job.stopped_early:
            return f"Stopped at {'frame' if job.is_video else 'step'} {job.step} of {job.steps}"
        return f"Finished in {format_duration(job.elapsed)}"
    if job.status == "failed":
        return "Failed"
    return "Cancelled"


def job_facts(job: Job, timezone: Optional[str] = None, now: Optional[float] = None) -> str:
    """'256 × 171 px · 2 paintings · today 07:45': what a gallery entry says besides its status."""
    paintings = f"{job.n_styles} paintings" if job.n_styles > 1 else "1 painting"
    frames = f" · video, {job.steps} frames" if job.is_video else ""
    return f"{job.width} × {job.height} px{frames} · {paintings} · {format_when(job.created, timezone, now)}"


def video_progress_line(job: Job) -> str:
    """'Frame 3 of 12: step 14 of 20, from frame 2 carried along the motion.' for a running video."""
    frame = min(job.step + 1, job.steps)
    if not job.frame_steps:
        return f"Frame {frame} of {job.steps}: getting ready."
    how = "the first frame takes the full steps" if job.step == 0 else "from the frame before, carried along the motion"
    return f"Frame {frame} of {job.steps}: step {job.frame_step} of {job.frame_steps} ({how})."


def format_when(epoch: float, timezone: Optional[str] = None, now: Optional[float] = None) -> str:
    """'today 07:45', 'yesterday 18:02', '28 Nov 07:45', '28 Nov 2025', in the browser's time
    zone (an IANA name; the server's when unknown)."""
    import datetime as dt
    import time
    import zoneinfo

    try:
        zone: Optional[dt.tzinfo] = zoneinfo.ZoneInfo(timezone) if timezone else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    when = dt.datetime.fromtimestamp(epoch, zone)
    today = dt.datetime.fromtimestamp(time.time() if now is None else now, zone).date()
    clock = when.strftime("%H:%M")
    if when.date() == today:
        return f"today {clock}"
    if when.date() == today - dt.timedelta(days=1):
        return f"yesterday {clock}"
    if when.year == today.year:
        return f"{when.day} {when:%b} {clock}"
    return f"{when.day} {when:%b %Y}"


def settling(losses: Sequence[float]) -> Optional[str]:
    """How much the picture still changes, from the loss at the current scale's steps (oldest
    first): the loss's own numbers mean nothing to a person, its slope does."""
    if len(losses) < 4:
        return None
    window = losses[-max(3, len(losses) // 5) :]
    if window[0] <= 0:
        return None
    drop = 1.0 - window[-1] / window[0]
    if drop > 0.05:
        return "still changing a lot"
    if drop > 0.01:
        return "settling"
    return "nearly settled at this size: more steps would change little"
