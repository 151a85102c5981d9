"""The "new picture" page: pictures in, a few plain choices, an instant preview, Start.

Every function here draws widgets and returns what the person chose; the decisions (how a
slider becomes a style weight, how long a run takes) are in ``logic``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, NamedTuple, Optional

import streamlit as st

from .. import images as im
from .. import videoio as vio
from ..config import PRESETS, ConfigError, StyleConfig, VideoConfig
from . import logic, media, state
from .media import Clip, Picture

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
VIDEO_TYPES = ["mp4", "mov", "m4v", "webm", "mkv", "avi"]  # the browser's filter; ffmpeg decides
KINDS = {"picture": "Photo", "video": "Video"}
TYPICAL_PHOTO = (1600, 1200)  # for the estimate before a photo is chosen

COLOR_LABELS = {
    "none": "The painting's colours",
    "luminance": "My photo's colours",
    "histogram": "My photo's palette, painted",
}
COLOR_HELP = (
    "The painting's colours: the result takes the painting's palette. "
    "My photo's colours: the style repaints brightness only, the photo keeps its colours. "
    "My photo's palette, painted: the painting is first recoloured to the photo's palette. "
    "(Gatys et al. 2016, 'Preserving colour in neural artistic style transfer'.)"
)


class Source(NamedTuple):
    """The job that "Tweak and run again" starts from: its settings, pictures and the choices
    made on the form (``JobStore.notes``: strength, time limit, file names)."""

    job_id: str
    config: StyleConfig
    content: Picture
    styles: list[Picture]
    notes: dict[str, Any]


def page() -> None:
    """Draw the whole form; on Start, queue the job and go to its page."""
    store, owner = state.store(), state.owner()
    source = _tweak_source()
    st.title("Turn a photo into a painting")
    st.caption("Choose a photo and a painting; watch your picture form; keep it when you like it.")

    left, right = st.columns([3, 2], gap="large")
    with left:
        content, clip, styles, input_errors = _inputs(source)
        base_name, base, strength0 = _base(source)
        prefix = f"{base_name}:"
        choice, made = _main_controls(base, prefix, content, styles, strength0, source, video=_video_mode())
        with st.expander("Advanced: every option of the engine"):
            advanced, adv_errors = advanced_section(base, prefix)

    errors = list(adv_errors)  # upload problems are shown under their upload box
    config: Optional[StyleConfig] = None
    if not adv_errors:
        try:
            config = base.replace(**advanced, **choice)
        except ConfigError as e:
            errors.append(str(e))

    with right:
        st.subheader("Instant preview")
        _preview(content, styles, choice, made["strength"])
        if config is not None:
            _estimate(config, content, owner, clip, made)
        for message in errors:
            st.error(message)
        ready = content is not None and bool(styles) and config is not None and not errors and not input_errors
        if not ready and not errors:
            what = "a video clip" if _video_mode() else "a photo"
            st.info(f"Choose {what} and at least one painting to start.")
        if st.button("Paint it", type="primary", disabled=not ready, width="stretch", key="start"):
            assert content is not None and config is not None
            notes = {**made, "names": [s.name for s in styles], "photo": content.name}
            paintings = [s.data for s in styles]
            try:
                if clip is not None:
                    video = VideoConfig(steps_later=made["steps_later"])
                    job_id = store.submit_video(clip.data, paintings, config, owner, notes=notes, video=video)
                else:
                    job_id = store.submit(content.data, paintings, config, owner, notes=notes)
            except (im.ImageError, vio.VideoError, ConfigError) as e:
                st.error(str(e))
            except OSError as e:  # a full disk or a read-only data folder: say so, without paths
                st.error(
                    f"The server could not store your pictures ({e.strerror or type(e).__name__}). Try again later."
                )
            else:
                state.go(job=job_id)


# --- where the form starts from --------------------------------------------------------------


def _tweak_source() -> Optional[Source]:
    """The job named by ?from=, with its pictures, if it can be read."""
    job_id = state.param(state.FROM_PARAM)
    if not job_id:
        return None
    store = state.store()
    job = store.get(job_id)
    if job is None:
        st.warning("The picture to start from was not found; starting afresh.")
        return None
    try:
        content, styles = media.job_pictures(str(store.data_dir), job_id)
    except (im.ImageError, KeyError, OSError) as e:
        st.warning(f"Its pictures could not be read ({e}); choose them again.")
        return None
    notes = store.notes(job_id)
    names = notes.get("names")
    if isinstance(names, list) and len(names) == len(styles):
        styles = [dataclasses.replace(s, name=str(n)) for s, n in zip(styles, names)]
    if isinstance(notes.get("photo"), str):
        content = dataclasses.replace(content, name=notes["photo"])
    return Source(job_id, job.config, content, styles, notes)


def _base(source: Optional[Source]) -> tuple[str, StyleConfig, int]:
    """The preset (or the earlier job's settings) the controls start from, and the strength
    notch to start at."""
    options = list(logic.PRESET_ORDER)
    titles = {n: logic.preset_title(n) for n in options}
    captions = {n: logic.preset_help(n) for n in options}
    if source is not None:
        options.insert(0, "earlier")
        titles["earlier"] = "As before"
        captions["earlier"] = "The exact settings of the picture you are tweaking."
    default = "earlier" if source is not None else "default"
    name = (
        st.radio(
            "Look",
            options,
            index=options.index(default),
            format_func=titles.__getitem__,
            horizontal=True,
            key=f"preset:{source.job_id if source else ''}",
            help="A starting point; every choice below can still be changed.",
        )
        or default
    )  # (None only without an index)
    st.caption(captions[name])
    if name == "earlier" and source is not None:
        # The stored weight already holds the strength chosen then: the slider starts at that
        # notch, over the weight it was applied to, so an unchanged slider runs the same weight.
        strength = logic.strength_notch(source.notes.get("strength"))
        base = source.config.replace(style_weight=logic.base_style_weight(source.config.style_weight, strength))
        return f"job-{source.job_id}", base, strength
    return name, PRESETS[name], logic.STRENGTH_DEFAULT


# --- pictures --------------------------------------------------------------------------------


def _video_mode() -> bool:
    """Whether the form paints a video clip (the Photo / Video choice above the upload)."""
    return st.session_state.get("kind") == "video"


def _inputs(source: Optional[Source]) -> tuple[Optional[Picture], Optional[Clip], list[Picture], list[str]]:
    """The two upload boxes with thumbnails; falls back to the tweaked job's pictures (and says
    so under the box, which cannot show a file it did not receive). In video mode the first box
    takes a clip, and the photo is its first frame (what the preview and the estimate use)."""
    errors: list[str] = []
    clip: Optional[Clip] = None
    c1, c2 = st.columns(2)
    with c1:
        st.segmented_control(
            "Paint",
            list(KINDS),
            default="picture",
            format_func=KINDS.__getitem__,
            key="kind",
            help=f"A photo, or a short video clip (up to {vio.CLIP_MAX_FRAMES} frames and "
            f"{vio.CLIP_MAX_SECONDS:g} s), painted frame by frame without flicker.",
        )
        if _video_mode():
            clip = _clip_upload(errors)
            content = clip.poster if clip is not None else None
        else:
            content = _photo_upload(source, errors)
    with c2:
        ups = st.file_uploader(
            "Painting(s) to borrow the style from",
            type=IMAGE_TYPES,
            accept_multiple_files=True,
            key="style_upload",
            max_upload_size=im.UPLOAD_MB,
            help="One painting, or several to blend (a slider under each sets its share).",
        )
        styles: list[Picture] = []
        for i, f in enumerate(ups or []):
            pic = _checked(f.getvalue(), f"painting {i + 1}" if len(ups) > 1 else "painting", errors, f.name)
            if pic is not None:
                styles.append(pic)
        if not ups and source is not None:
            styles = list(source.styles)
            plural = "s" if len(styles) > 1 else ""
            st.caption(
                f":material/history: The painting{plural} of the picture you are tweaking "
                f"(drop others to replace {'them' if plural else 'it'}):"
            )
        if styles:
            cols = st.columns(min(3, len(styles)))
            for i, pic in enumerate(styles):
                # A short name: in a third of the column a long one broke mid-word (".jp / g").
                cols[i % len(cols)].image(media.jpeg(pic.key, pic.image, 200), caption=_short(pic.name, 14))
    return content, clip, styles, errors


def _photo_upload(source: Optional[Source], errors: list[str]) -> Optional[Picture]:
    """The photo's upload box and thumbnail; the tweaked job's photo when none is dropped."""
    up = st.file_uploader(
        "Your photo",
        type=IMAGE_TYPES,
        key="content_upload",
        max_upload_size=im.UPLOAD_MB,
        help=f"PNG, JPEG, WebP, ... up to {im.UPLOAD_MB} MB. Its shape is kept.",
    )
    content = _checked(up.getvalue(), "photo", errors, up.name) if up is not None else None
    if content is None and up is None and source is not None:
        content = source.content
        st.caption(":material/history: The photo of the picture you are tweaking (drop another to replace it):")
    if content is not None:
        st.image(media.jpeg(content.key, content.image), caption=f"{content.size[0]} × {content.size[1]} px")
    return content


def _clip_upload(errors: list[str]) -> Optional[Clip]:
    """The clip's upload box, its first frame and its facts; None (after saying why) if unusable."""
    up = st.file_uploader(
        "Your video clip",
        type=VIDEO_TYPES,
        key="video_upload",
        max_upload_size=im.UPLOAD_MB,
        help=f"MP4, MOV, WebM, ... up to {im.UPLOAD_MB} MB, {vio.CLIP_MAX_FRAMES} frames and "
        f"{vio.CLIP_MAX_SECONDS:g} s. The sound is kept.",
    )
    if up is None:
        return None
    try:
        clip = media.check_clip(up.getvalue(), up.name)
    except (im.ImageError, vio.VideoError) as e:
        st.error(str(e))
        errors.append(str(e))
        return None
    info = clip.info
    sound = ", with sound" if info.has_audio else ""
    st.image(
        media.jpeg(clip.poster.key, clip.poster.image),
        caption=f"{info.width} × {info.height} px, {info.frames} frames, "
        f"{info.seconds:.1f} s at {float(info.fps):g} fps{sound}",
    )
    return clip


def _checked(data: bytes, what: str, errors: list[str], filename: str = "") -> Optional[Picture]:
    """The decoded upload, or None after showing why not (right under its upload box)."""
    try:
        return dataclasses.replace(media.check_upload(data, what), name=filename)
    except im.ImageError as e:
        st.error(str(e))
        errors.append(str(e))
        return None


def _short(name: str, most: int = 24) -> str:
    """A file name that fits under a thumbnail: 'the_starry_ni….jpg'."""
    if len(name) <= most:
        return name
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext) > 5:
        return name[: most - 1] + "…"
    return stem[: most - len(ext) - 2] + "…." + ext


# --- the plain controls ----------------------------------------------------------------------


def _main_controls(
    base: StyleConfig,
    prefix: str,
    content: Optional[Picture],
    styles: list[Picture],
    strength0: int,
    source: Optional[Source],
    *,
    video: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Strength, colours, blend, size, time. Returns the StyleConfig fields they set, and the
    choices as made (strength notch, steps or time limit), kept with the job for "tweak".
    A video offers its smaller sizes, steps for the first frame and for each later one."""
    out: dict[str, Any] = {}
    notes = source.notes if source is not None else {}
    strength = st.select_slider(
        "Style strength",
        list(logic.STRENGTH_LEVELS),
        value=strength0,
        format_func=logic.STRENGTH_LEVELS.__getitem__,
        key=prefix + "strength",
        help="Left: more of your photo. Right: more of the painting. Medium is the look as tuned.",
    )
    out["style_weight"] = logic.style_weight_for(base.style_weight, strength)

    if len(styles) > 1:
        st.caption("Blend of the paintings: each one's share")
        defaults = base.style_blend if len(base.style_blend) == len(styles) else (1.0,) * len(styles)
        top = max(defaults) or 1.0  # the engine normalises the blend: only the ratios matter
        cols = st.columns(min(3, len(styles)))
        blend = []
        for i, pic in enumerate(styles):
            with cols[i % len(cols)]:
                # All one shape, so the sliders under them line up (a tall painting pushed its down).
                st.image(media.jpeg(pic.key, pic.image, fit=(96, 72)), width=96)
                blend.append(
                    st.slider(
                        _short(pic.name) or f"Painting {i + 1}",
                        0.0,
                        1.0,
                        round(defaults[i] / top, 2),
                        0.05,
                        key=f"{prefix}blend{i}:{len(styles)}",
                    )
                )
        out["style_blend"] = tuple(blend) if any(blend) else ()
        if not any(blend):
            st.warning("All blend sliders are at zero; the paintings are mixed equally.")
    else:
        out["style_blend"] = ()

    color = st.radio(
        "Colours",
        list(COLOR_LABELS),
        index=list(COLOR_LABELS).index(base.color),
        format_func=COLOR_LABELS.__getitem__,
        horizontal=True,
        key=prefix + "color",
        help=COLOR_HELP,
    )
    out["color"] = color
    if color != "none":
        out["color_strength"] = st.slider(
            "How much of the photo's colour to keep",
            0.0,
            1.0,
            float(base.color_strength),
            0.05,
            key=prefix + "color_strength",
        )

    sizes = logic.size_choices(base.size, video)
    out["size"] = st.select_slider(
        "Size (long side, pixels)",
        sizes,
        value=base.size if base.size in sizes else sizes[-1],
        key=prefix + "size" + (":video" if video else ""),
        help="The picture keeps your photo's shape. Bigger takes longer: twice the size, about four times the time.",
    )

    w, h = content.size if content is not None else TYPICAL_PHOTO
    if video:
        out["steps"] = st.select_slider(
            "Steps for the first frame",
            logic.step_choices(base.steps),
            value=base.steps,
            key=prefix + "steps",
            help="The first frame is painted like a picture.",
        )
        later = VideoConfig().steps_later
        made_video: dict[str, Any] = {"strength": strength, "budget": "Steps", "kind": "video"}
        made_video["steps_later"] = st.select_slider(
            "Steps for each later frame",
            logic.step_choices(later),
            value=later,
            key=prefix + "steps_later",
            help=_field_help(VideoConfig, "steps_later"),
        )
        out["preview_every"] = logic.preview_every_for(base.replace(size=out["size"]), w, h, cost=state.step_cost())
        return out, made_video
    budgets = ["Steps", "Time limit"]
    mode = st.segmented_control(
        "Run for",
        budgets,
        default=notes.get("budget") if notes.get("budget") in budgets else "Steps",
        key=prefix + "budget",
        help="A number of optimisation steps, or as many as fit in a time you choose.",
    )
    made: dict[str, Any] = {"strength": strength, "budget": mode or "Steps"}
    sized = base.replace(size=out["size"])
    cost = state.step_cost()
    if mode == "Time limit":
        seconds0 = notes.get("seconds") if notes.get("seconds") in logic.TIME_CHOICES else 60
        seconds = st.select_slider(
            "At most", logic.TIME_CHOICES, value=seconds0, format_func=logic.format_duration, key=prefix + "seconds"
        )
        out["steps"] = logic.steps_for_seconds(sized, w, h, seconds, _calibration(state.owner()), cost)
        made["seconds"] = seconds
        st.caption(f"About {out['steps']} steps.")
    else:
        out["steps"] = st.select_slider(
            "Steps",
            logic.step_choices(base.steps),
            value=base.steps,
            key=prefix + "steps",
            help="More steps: a more finished painting. You can stop any time and keep the picture so far.",
        )
    out["preview_every"] = logic.preview_every_for(sized, w, h, cost=cost)
    return out, made


def _field_help(cls: type, name: str) -> str:
    """A config field's own help text (the one place an option is explained)."""
    return str(next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("help", ""))


def advanced_section(base: StyleConfig, prefix: str) -> tuple[dict[str, Any], list[str]]:
    """One widget per StyleConfig field (not set above), generated from its type and metadata.

    Returns the chosen values and the errors (e.g. a number list that does not parse).
    """
    values: dict[str, Any] = {}
    errors: list[str] = []
    st.caption(
        "Every option of the engine; the ? beside each explains it. Size, steps, style "
        "strength, colours and the blend are set above; live images are sent about once a second."
    )
    cols = st.columns(2)
    for i, f in enumerate(logic.advanced_fields()):
        with cols[i % 2]:
            try:
                values[f.name] = field_widget(f, getattr(base, f.name), prefix + "adv:")
            except ConfigError as e:
                errors.append(str(e))
    return values, errors


def field_widget(f: dataclasses.Field, current: Any, prefix: str) -> Any:
    """The widget for one config field; returns its value (raises ConfigError if unparsable)."""
    kind, key, help_ = logic.widget_kind(f), prefix + f.name, f.metadata.get("help")
    label, meta = logic.label(f), f.metadata
    if kind == "checkbox":
        return st.checkbox(label, value=current, key=key, help=help_)
    if kind == "select":
        opts = logic.choices(f)
        return st.selectbox(label, opts, index=opts.index(current) if current in opts else 0, key=key, help=help_)
    if kind == "multiselect":
        opts = logic.choices(f)
        return tuple(st.multiselect(label, opts, default=[c for c in current if c in opts], key=key, help=help_))
    if kind == "int":
        return int(st.number_input(label, meta.get("min"), meta.get("max"), int(current), 1, key=key, help=help_))
    if kind == "float":
        lo, hi = meta.get("min"), meta.get("max")
        return float(
            st.number_input(
                label,
                None if lo is None else float(lo),
                None if hi is None else float(hi),
                float(current),
                _float_step(current),
                format="%g",
                key=key,
                help=help_,
            )
        )
    if kind == "numbers":
        text = st.text_input(label, logic.format_numbers(current), key=key, help=help_, placeholder="empty = automatic")
        return logic.parse_numbers(text, f.name)
    return st.text_input(label, str(current), key=key, help=help_)


def _float_step(value: float) -> float:
    """A step one decimal below the value's own magnitude (0.1 for 1.0, 1e-4 for 5e-3)."""
    if not value:
        return 0.01
    return 10.0 ** (math.floor(math.log10(abs(value))) - 1)


# --- preview and estimate --------------------------------------------------------------------


def _preview(content: Optional[Picture], styles: list[Picture], choice: dict[str, Any], strength: int) -> None:
    """The instant preview, or a short note why there is none (the page works without it)."""
    if content is None or not styles:
        st.caption("A rough preview appears here, in a second or two, as soon as both pictures are chosen.")
        return
    try:
        img = media.instant_preview(
            content.key,
            tuple(s.key for s in styles),
            logic.preview_strength(strength),
            tuple(choice.get("style_blend", ())),
            choice["color"],
            float(choice.get("color_strength", 1.0)),
            content.image,
            [s.image for s in styles],
        )
    except Exception as e:  # noqa: BLE001 -- any failure of the optional preview is only a note
        st.caption(f"No instant preview on this server ({type(e).__name__}: {e}). The painting itself is unaffected.")
        return
    st.image(img, caption="A rough sketch in a second; the real painting is finer.", width="stretch")


def _estimate(
    config: StyleConfig,
    content: Optional[Picture],
    owner: str,
    clip: Optional[Clip] = None,
    made: Optional[dict] = None,
) -> None:
    w, h = content.size if content is not None else TYPICAL_PHOTO
    out_w, out_h = logic.output_size(config, w, h)
    cost, calibration = state.step_cost(), _calibration(owner)
    if clip is not None and made is not None:
        video = VideoConfig(steps_later=made["steps_later"])
        n = clip.info.frames
        first, later = logic.estimate_video_seconds(config, video, w, h, n, calibration, cost)
        seconds = first + (n - 1) * later
        what = f"for {n} frames of {out_w} × {out_h} px"
        own = f"the first {logic.format_duration(first)}, then about {logic.format_duration(later)} each"
    else:
        seconds = logic.estimate_seconds(config, w, h, calibration, cost)
        what = f"for a {out_w} × {out_h} px picture, {config.steps} steps"
        own = ""
    store = state.store()
    ahead = store.ahead()
    if ahead:  # the queue first: with one worker, each picture ahead is painted before yours
        wait = logic.wait_seconds(ahead, cost, time.time(), len(store.workers()), calibration)
        st.markdown(
            f"**About {logic.format_duration(wait + seconds)}** {what}: {logic.queue_words(len(ahead))} "
            f"(about {logic.format_duration(wait)}), then yours ({logic.format_duration(seconds)})."
        )
    else:
        st.markdown(f"**About {logic.format_duration(seconds)}** {what}" + (f": {own}." if own else "."))
    st.caption(
        "Timed on this computer when the studio started."
        if cost.measured
        else "From typical figures: the studio is still timing this computer."
    )
    fits, note = logic.memory_note(config, w, h)
    (st.caption if fits else st.warning)(note)


def _calibration(owner: str) -> float:
    """How this machine compares with the estimate, from this browser's last finished pictures."""
    cost = state.step_cost()
    jobs = [
        j for j in state.store().list(owner, limit=20) if j.status == "done" and not j.stopped_early and j.elapsed > 0
    ]
    samples = [(logic.estimate_seconds(j.config, j.width, j.height, cost=cost), j.elapsed) for j in jobs[:8]]
    return logic.calibration_from(samples)
