"""StyleConfig: the single source of truth for every option of a run, and the presets.

The CLI flags, the studio's widgets and the stored job records are all generated from the
fields below, so an option is added here and nowhere else. Each field's ``metadata["help"]``
is the text users see.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

# The vocabulary every other module speaks: it imports nothing of ours, and importing it
# must stay cheap (no torch): the CLI's ``preview`` and ``presets`` commands and the studio
# import it on every start.

# One row per VGG block.
# fmt: off
VGG_LAYERS: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)
# fmt: on

# scales=0 (auto) adds a coarse scale only when it would be at least this big. Starting from
# the instant preview does the coarse scale's job (a painted picture with the photo's layout)
# in a second, and a small coarse scale loses style on upsampling: at 512 px, one scale from
# the preview reached both baselines' quality in 3-10 full-size steps, while two scales spent
# ~60 s at 256 px ending below the preview's own scores; at 256 px a 128 px coarse scale's
# upsampled images scored 0.94 on style against 0.98 for one scale (benchmarks/RESULTS.md,
# "Tuning the presets").
# Above it, auto runs from this size up in ~2x steps, so that every output size starts from the same
# 512 px picture: the strokes are laid down at 512 px and only refined at the larger scales,
# and a 2048 px print has the look of the 512 px picture rather than four times finer strokes
# (VGG's receptive fields are fixed in pixels; jcjohnson/neural-style #36, #199).
MIN_AUTO_SCALE = 512

# Below this output size the content is also matched one VGG block shallower (plan.content_weights):
# VGG's receptive fields are fixed in pixels, so at 256 px relu4_2 sees twice as much of the picture
# as at 512 px and lets thin structures go (issue 13: a rocket at 256 px nearly gone); at 256 px
# relu3_2 reads the picture on the grid relu4_2 reads a 512 px one on. At and above it, nothing changes.
CONTENT_FULL_SIZE = 512

# Longest output side we accept. Above about 2048 px a run goes in blocks (blocks.py) when the
# whole image would not fit the memory budget; the memory plan (plan.py) refuses what cannot fit.
MAX_SIZE = 8192


class ConfigError(ValueError):
    """An option has a value that cannot work; the message says which and what is allowed."""


_BYTES_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
                "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}  # fmt: skip


def parse_bytes(text: str) -> int:
    """'6GB' -> 6_000_000_000, '512MiB' -> 536_870_912, '2.5 GB', '1000000'. Raises ConfigError."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", text)
    unit = m.group(2).upper() if m else ""
    if m is None or unit not in _BYTES_UNITS:
        raise ConfigError(f"max_memory must be an amount such as 6GB, 512MB or 16GiB, got {text!r}")
    return int(float(m.group(1)) * _BYTES_UNITS[unit])


def _f(default: Any, help: str, **meta: Any) -> Any:
    """A dataclass field with user-facing help text (and optional choices/min/max)."""
    if isinstance(default, (list, dict)):
        raise TypeError("use tuples for sequence defaults: the config is frozen")
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class StyleConfig:
    """Every option of one style-transfer run. Frozen: derive variants with ``replace``."""

    # --- output -----------------------------------------------------------------------
    size: int = _f(512, "Long side of the output in pixels; the aspect ratio is kept.", min=16, max=MAX_SIZE)
    steps: int = _f(80, "Total optimisation steps, summed over all scales.", min=1, max=100_000)
    scales: int = _f(
        0,
        "Coarse-to-fine scales: optimise at size/2^(n-1), upsample, continue. "
        "Most steps go to the small scales, where they are cheap. "
        f"0 = auto: from {MIN_AUTO_SCALE} px up in steps of about 2x (one scale up to 1.4x that), "
        f"so every size starts from the same {MIN_AUTO_SCALE} px picture and keeps its look.",
        min=0,
        max=6,
    )
    # --- loss ---------------------------------------------------------------------------
    content_weight: float = _f(1.0, "Weight of the content loss (alpha in Gatys et al.).", min=0.0)
    style_weight: float = _f(5e-3, "Weight of the style loss (beta in Gatys et al.).", min=0.0)
    tv_weight: float = _f(0.0, "Weight of the total-variation (smoothness) loss.", min=0.0)
    content_layers: tuple[str, ...] = _f(("relu4_2",), "VGG19 layers matched for content.", choices=VGG_LAYERS)
    content_fine: float = _f(
        1.0,
        f"Below {CONTENT_FULL_SIZE} px, the content is also matched one VGG block shallower (relu4_2 -> "
        "relu3_2), so that thin structures hold at small sizes: the weight of that layer relative to the "
        f"content layers' at {CONTENT_FULL_SIZE // 2} px and below, less in between (0 = off).",
        min=0.0,
    )
    style_layers: tuple[str, ...] = _f(
        ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"),
        "VGG19 layers matched for style (Gram matrices).",
        choices=VGG_LAYERS,
    )
    style_layer_weights: tuple[float, ...] = _f(
        (),
        "Weight per style layer; empty means the loss's own: equal for 'gram', 4^-block for 'w2' and "
        "'sliced' (relu1_1 : relu2_1 : ... = 256 : 64 : 16 : 4 : 1).",
    )
    style_blend: tuple[float, ...] = _f((), "Weight per style image when several are given; empty means equal.")
    gram: Literal["normalised", "raw"] = _f(
        "normalised",
        "Style loss form: 'normalised' is the paper's 1/(4N^2M^2)*sum((G-A)^2), the same at every "
        "image size; 'raw' is mean((G-A)^2) of unnormalised Grams, which grows with the pixel count "
        "squared (the form the classic recipe's weights were set for).",
        choices=("normalised", "raw"),
    )
    # w2 from the twelve-pair comparison at 512 px: closer to the painting by both opinions
    # than the Gram loss at the same content (benchmarks/RESULTS.md, "Choosing the loss").
    style_loss: Literal["gram", "w2", "sliced"] = _f(
        "w2",
        "How the painting's feature statistics are matched: 'gram' (Gatys et al.: Gram matrices), "
        "'w2' (Wasserstein-2 between Gaussian fits: means and covariances) or 'sliced' (sliced "
        "Wasserstein, Heitz et al. 2021: whole feature distributions along fixed directions).",
        choices=("gram", "w2", "sliced"),
    )
    content_reduction: Literal["mean", "sum"] = _f(
        "mean",
        "Content loss form: 'sum' is the paper's 1/2*sum((F-P)^2), which grows with the image; "
        "'mean' is mean((F-P)^2), the same at every scale.",
        choices=("mean", "sum"),
    )
    # --- optimiser ----------------------------------------------------------------------
    optimizer: Literal["lbfgs", "adam"] = _f("lbfgs", "Optimiser for the pixels.", choices=("lbfgs", "adam"))
    lr: float = _f(1.0, "Learning rate (Adam: per step, on [0,1] pixels; L-BFGS: step length).", min=0.0)
    # Iterate averaging as crowsonkb's style_transfer does it (an exponential moving average of
    # the image with bias correction, reset at each scale): it smooths the step-to-step noise of
    # Adam's iterates. Off by default: with L-BFGS it did not pay (benchmarks/RESULTS.md).
    average: float = _f(
        0.0,
        "Iterate averaging: the result (and the start of the next scale) is an exponential moving "
        "average of the image over the steps of each scale, with this decay per step, e.g. 0.9; "
        "0 = off, the last image.",
        min=0.0,
        max=0.999,
    )
    # "preview" (warm start from the instant feed-forward result) reached every quality
    # target in fewer steps than starting from the photo (benchmarks/RESULTS.md, 256 px).
    init: Literal["content", "noise", "preview", "image"] = _f(
        "preview",
        "Start image: the instant preview (warm start), the content photo, noise, or an image you pass in.",
        choices=("content", "noise", "preview", "image"),
    )
    seed: int = _f(0, "Random seed, for reproducible noise and runs.")
    clamp: bool = _f(True, "Keep pixels in [0,1] during optimisation (unclamped L-BFGS wrecks images).")
    pooling: Literal["max", "avg"] = _f(
        "max", "VGG pooling; Gatys et al. found average pooling slightly smoother.", choices=("max", "avg")
    )
    # --- style & colour -----------------------------------------------------------------
    style_scale: float = _f(
        1.0, "Size of the style image relative to the output (bigger = larger brush strokes).", min=0.05, max=4.0
    )
    color: Literal["none", "luminance", "histogram"] = _f(
        "none",
        "Keep the photo's colours: 'luminance' transfers style on brightness only (Gatys et al. "
        "2016), the painting's brightness matched to the photo's so a night stays a night; "
        "'histogram' recolours the painting to the photo's colour statistics first.",
        choices=("none", "luminance", "histogram"),
    )
    color_strength: float = _f(
        1.0,
        "How much of the photo's colour to keep, 0..1 (with --color): with 'histogram', how far the "
        "painting is recoloured to the photo's palette; with 'luminance', how far the painting's "
        "brightness is matched to the photo's (the colours are always the photo's).",
        min=0.0,
        max=1.0,
    )
    # --- runtime ------------------------------------------------------------------------
    preview_every: int = _f(10, "Send a preview image to the progress callback every N steps (0 = never).", min=0)
    precision: Literal["auto", "fp32", "bf16", "fp16"] = _f(
        "auto",
        "Arithmetic of the VGG convolutions: 'auto' uses bf16 where the hardware runs it fast (a CPU "
        "with AMX or AVX512-BF16, a CUDA GPU with bf16) and fp32 elsewhere. The image, the style "
        "statistics, the losses and the optimiser always stay fp32.",
        choices=("auto", "fp32", "bf16", "fp16"),
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = _f(
        "auto", "Where to compute.", choices=("auto", "cpu", "cuda", "mps")
    )
    threads: int = _f(0, "CPU threads (0 = one per physical core).", min=0)
    # --- memory (large prints) ----------------------------------------------------------
    max_memory: str = _f(
        "",
        "Memory the run may use, e.g. 6GB or 16GiB; empty = a safe share of what is free now (RAM on a "
        "CPU, GPU memory on a GPU). The run plan picks whole-image or block mode and the block size to "
        "fit it, and refuses a size that cannot fit.",
    )
    block_size: int = _f(
        0,
        "Optimise in square blocks of this many pixels (a multiple of 16), each with an overlap as wide "
        "as the deepest layer's receptive field; the objective and the result are the whole image's. "
        "0 = the run plan decides from max_memory.",
        min=0,
        max=MAX_SIZE,
    )
    weights: str = _f("", "Path to a local VGG19 weights file (torchvision vgg19 state dict .pth); empty = bundled.")

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> StyleConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(self)
            for v in [getattr(self, f.name)]
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StyleConfig:
        """Build from a plain dict (a job record, JSON); unknown keys are an error."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"unknown option(s): {', '.join(unknown)}")
        kwargs: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**kwargs)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> StyleConfig:
        """A stored job's settings (a whole ``to_dict`` record): an option the record lacks was
        added after it was written, so it takes the value that runs it as it was asked
        (``ADDED_OPTIONS``), not today's default."""
        return cls.from_dict({**ADDED_OPTIONS, **data})

    @property
    def last_layer(self) -> str:
        """The deepest VGG layer this run reads; the network is built only up to it."""
        return max(self.content_layers + self.style_layers, key=VGG_LAYERS.index)


def fields() -> tuple[dataclasses.Field, ...]:
    """The config's fields, for front ends that generate their options from them."""
    return dataclasses.fields(StyleConfig)


def video_fields() -> tuple[dataclasses.Field, ...]:
    """VideoConfig's fields (it is defined below), for the video command's flags."""
    return dataclasses.fields(VideoConfig)


def check_fields(cfg: Any) -> None:
    """Each field of a config dataclass against its type, choices, min and max (ConfigError)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        meta = f.metadata
        kind = type(f.default)
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{f.name} must be true or false, got {value!r}")
            continue
        if kind in (int, float):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (kind is int and not isinstance(value, int))
            ):
                raise ConfigError(f"{f.name} must be {'an integer' if kind is int else 'a number'}, got {value!r}")
            if value != value or value in (float("inf"), float("-inf")):
                raise ConfigError(f"{f.name} must be a finite number, got {value!r}")
            if "min" in meta and value < meta["min"]:
                raise ConfigError(f"{f.name} must be at least {meta['min']}, got {value}")
            if "max" in meta and value > meta["max"]:
                raise ConfigError(f"{f.name} must be at most {meta['max']}, got {value}")
        if kind is str and "choices" in meta and value not in meta["choices"]:
            raise ConfigError(f"{f.name} must be one of {', '.join(meta['choices'])}; got {value!r}")
        if kind is tuple:
            if not isinstance(value, tuple):
                raise ConfigError(f"{f.name} must be a list, got {value!r}")
            if "choices" in meta:
                bad = [v for v in value if v not in meta["choices"]]
                if bad:
                    raise ConfigError(
                        f"{f.name}: unknown VGG19 layer(s) {', '.join(map(str, bad))}; use names like conv4_2, relu5_1"
                    )
            elif any(
                isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0 for v in value
            ):
                raise ConfigError(f"{f.name} must be non-negative numbers, got {value!r}")


def validate(cfg: StyleConfig) -> None:
    """Raise ConfigError naming the first option that cannot work."""
    check_fields(cfg)
    if not cfg.content_layers and not cfg.style_layers:
        raise ConfigError("at least one content or style layer is needed")
    if cfg.max_memory:
        parse_bytes(cfg.max_memory)
    if cfg.block_size % 16:
        raise ConfigError(f"block_size must be a multiple of 16 (or 0: the plan decides), got {cfg.block_size}")
    if cfg.style_layer_weights and len(cfg.style_layer_weights) != len(cfg.style_layers):
        raise ConfigError(
            f"style_layer_weights has {len(cfg.style_layer_weights)} values but there are "
            f"{len(cfg.style_layers)} style layers"
        )
    if cfg.scales and cfg.size >> (cfg.scales - 1) < MIN_SIZE:
        raise ConfigError(f"scales={cfg.scales} makes the smallest scale under {MIN_SIZE} px at size={cfg.size}")


def field_meta(name: str) -> Mapping[str, Any]:
    """A field's metadata (help, choices, min, max): front ends ask here, not copy the numbers."""
    return StyleConfig.__dataclass_fields__[name].metadata


# The smallest side anything is made at (output, scales, style images): the size field's minimum.
MIN_SIZE: int = field_meta("size")["min"]


# --- presets ----------------------------------------------------------------------------

# The original project's recipe, reproduced exactly. What the recipe fixes: VGG19
# features[:29] (so the network ends at conv5_1), features read after conv1_1, conv2_1,
# conv3_1, conv4_1, conv5_1 (indices 0, 5, 10, 19, 28 of torchvision's vgg19.features: the
# conv outputs, before ReLU) for both content and style, content loss 1/2*sum((F-P)^2),
# Gram style loss, Adam with lr 0.01, alpha=1, beta=0.01, 1000 steps, init from the
# content image. What it leaves open, and what we chose:
#  - pixel scale: the image is optimised as an RGB tensor in [0, 1] (torchvision ToTensor
#    scale), so lr 0.01 is 1 % of the full pixel range per step; the VGG's own
#    preprocessing (BGR, 0-255, mean-subtracted) happens inside the network;
#  - no clamping during optimisation (the recipe has none); the image is clamped on save;
#  - the Gram is the raw G = F F^T and the layer loss mean((G-A)^2), the form of the PyTorch
#    tutorials this recipe comes from (features[:29], layers 0/5/10/19/28, alpha=1,
#    beta=0.01), with equal layer weights w_l = 1/5, summed over the layers (the content loss
#    is summed over them too). beta=0.01 only makes sense for this form: with Gatys'
#    normalised E_l the same weights leave the photo almost untouched (measured at 256 px:
#    style score 0.881 against the photo's own 0.891, SSIM 0.995), while the raw form paints
#    it (0.980 / 0.421), as the original project's pictures were;
#  - a single scale at the output size, max pooling, no total-variation term.
CLASSIC = StyleConfig(
    steps=1000,
    scales=1,
    content_weight=1.0,
    style_weight=0.01,
    tv_weight=0.0,
    content_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
    style_layers=("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"),
    content_reduction="sum",
    content_fine=0.0,  # the recipe's layers at every size
    style_loss="gram",
    gram="raw",
    optimizer="adam",
    lr=0.01,
    init="content",
    clamp=False,
    pooling="max",
    preview_every=100,
    precision="fp32",  # the recipe's arithmetic; bf16 would be a different (if close) picture
)

# Best result per second on a 2-core CPU (see benchmarks/RESULTS.md for the evidence).
DEFAULT = StyleConfig()

# When time is cheap: more steps, three scales.
QUALITY = StyleConfig(steps=600, scales=3)

# A fast sketch for the studio's first look.
DRAFT = StyleConfig(size=384, steps=60, scales=2)

# Options added after settings began to be stored (studio jobs, benchmark runs), each with the
# value that reproduces what a run did before it existed; an option added at a default that
# changes nothing needs no entry. A job queued before an upgrade and run (or resumed mid-run)
# after it keeps the rule it was started under, so its steps after a restart are the steps it
# would have made; a saved benchmark run is reused only for settings it was really made with.
# Add an entry here with every new option whose default changes pictures.
ADDED_OPTIONS: dict[str, Any] = {
    "style_loss": "gram",  # before it: Gram matrices (with equal layer weights, losses.default_layer_weights)
    "precision": "fp32",  # before it: fp32 everywhere
    "content_fine": 0.0,  # before it: content on relu4_2 alone at every size
}
ADDED_VIDEO_OPTIONS: dict[str, Any] = {"reanchor": 0.0}  # before it: Ruder's consistency check alone

PRESETS: dict[str, StyleConfig] = {"default": DEFAULT, "draft": DRAFT, "quality": QUALITY, "classic": CLASSIC}
PRESET_HELP: dict[str, str] = {
    "default": "Best picture per second on an ordinary CPU.",
    "draft": "A quick sketch in seconds, to try ideas.",
    "quality": "More steps and scales, for when time is cheap.",
    "classic": "The original project's recipe (Adam, lr 0.01, 1000 steps), reproduced exactly.",
}


def preset(name: str, **overrides: Any) -> StyleConfig:
    """A preset by name, optionally with some fields overridden."""
    try:
        base = PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
    return base.replace(**overrides) if overrides else base


def preset_diff(name: str) -> dict[str, Any]:
    """The fields a preset sets differently from StyleConfig's defaults (for `painterly presets`)."""
    cfg, base = preset(name), StyleConfig()
    return {
        f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(base, f.name)
    }


# --- video ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoConfig:
    """The options of a video that a single picture does not have (``stylize_video``).

    Its own small config, beside StyleConfig rather than inside it: StyleConfig's fields are
    every picture's CLI flags, studio widgets and job record, and these mean nothing for a
    picture. Each frame is still stylised with a StyleConfig; this says how frames are chained
    (Ruder, Dosovitskiy & Brox 2016, "Artistic style transfer for videos").
    """

    # On the scale of the content and style terms (together ~3e5 at the default weights): 1e8
    # brought the warping error between frames from ~6e-5 to ~1e-5 at 256 px on the shared clip
    # for a style loss 1 % higher (benchmarks/RESULTS.md, "Video").
    temporal_weight: float = _f(
        1e8,
        "Weight of the temporal loss: how strongly each frame keeps to the previous stylised frame "
        "carried along the optical flow, where the flow is reliable (0 = frames on their own).",
        min=0.0,
    )
    steps_later: int = _f(
        20,
        "Optimisation steps for each frame after the first of a shot, which starts from the previous "
        "stylised frame carried along the flow (the first frame of a shot takes the style options' steps).",
        min=1,
        max=100_000,
    )
    # Ruder et al. 2016, section 3.2: frame i also keeps to frames i-2 and i-4, each carried
    # along its own flow, where the nearer frames cannot say (a pixel uncovered again after an
    # occlusion keeps the look it had before, instead of being painted afresh).
    long_term: bool = _f(
        False,
        "Also keep each frame consistent with frames i-2 and i-4 where the previous frame cannot say "
        "(background uncovered again after something passed in front of it).",
    )
    # Ruder's check passes a flow that agrees with itself even where it does not explain the
    # frame (the bunny turning as it climbs out); carried there, strokes drifted from the photo
    # frame after frame (content SSIM 0.483 -> 0.448 over 16 frames at 256 px on the shared
    # clip). 300: a pixel whose photo, carried along the flow, is off by an RMS of 0.06 keeps
    # a third of its pull (benchmarks/RESULTS.md, "Video").
    reanchor: float = _f(
        300.0,
        "Where the photo behind the carried strokes, carried along the flow too, no longer matches "
        "the frame (mean squared difference e, pixels 0..1), the temporal pull is scaled by "
        "exp(-reanchor * e) and the frame starts from its own preview there (0 = trust the flow's "
        "consistency check alone).",
        min=0.0,
    )
    shot_change: float = _f(
        0.5,
        "A frame where more than this fraction of the pixels has no reliable flow from the previous "
        "frame starts a new shot: the chain restarts as from a first frame (1 = never).",
        min=0.0,
        max=1.0,
    )

    def __post_init__(self) -> None:
        check_fields(self)

    def replace(self, **changes: Any) -> VideoConfig:
        return dataclasses.replace(self, **changes)

    def later_frames(self, config: StyleConfig) -> StyleConfig:
        """The style options of a frame after the first of a shot: from the warped previous frame,
        at one scale (the start is already full size: coarser scales would only blur it)."""
        return config.replace(init="image", steps=self.steps_later, scales=1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VideoConfig:
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown video option(s): {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> VideoConfig:
        """A stored video job's settings; options added since it was written as in
        ``ADDED_VIDEO_OPTIONS`` (see ``StyleConfig.from_record``)."""
        return cls.from_dict({**ADDED_VIDEO_OPTIONS, **data})
