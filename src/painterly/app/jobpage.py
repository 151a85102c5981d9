"""The page of one job: waiting, then watching it form, then the result.

While the job is queued or running, one fragment redraws itself from the job store (the
worker is another process; nothing here runs in a thread): every second while it paints, every
few seconds while it waits or when nothing changed since the last look (``live.period``). It is
the page's only timer: the disk banner is drawn in it, the sidebar is not live here. When the
job ends, the fragment asks for one full rerun, which draws the finished page with no timer.
"""

from __future__ import annotations

import functools
import io
import time

import streamlit as st

from .. import precision
from ..config import ConfigError
from ..images import ImageError
from ..jobs import Job, JobStore
from ..jobs.store import VIEW_SIDE
from ..plan import RunPlan
from . import errors, health, live, logic, media, state

STATUS_WORDS = {
    "queued": "Waiting for its turn",
    "running": "Painting",
    "done": "Finished",
    "failed": "Something went wrong",
    "cancelled": "Cancelled",
}


def page(job_id: str) -> None:
    """Draw the page for ``job_id`` (from the URL)."""
    store, owner = state.store(), state.owner()
    job = store.get(job_id)
    if job is None or not job.active:
        health.banner()  # nothing live on this page: drawn once, no timer
    if job is None:
        st.title("Picture not found")
        st.error(
            "There is no picture with this link on this server. Links only work on the computer "
            "that made the picture, and only with the whole link."
        )
        if st.button("Make a new picture", type="primary"):
            state.go()
        return
    mine = job.owner == owner
    thing = "video" if job.is_video else "picture"
    st.title(f"Your {thing}" if mine else f"A {thing}")
    if job.active:
        follow(job_id, mine)
        _inputs_row(store, job)
    else:
        finished(store, job, mine)


@st.fragment  # its timer is set from inside, by what it saw (live.every)
@errors.guard()  # its reruns too: one line and an id, never a traceback
def follow(job_id: str, mine: bool) -> None:
    """The part of the page that follows a queued or running job (and the disk's banner)."""
    store = state.store()
    job = store.get(job_id)
    if job is None or not job.active:
        live.every(None)
        st.rerun()  # the whole page: it now shows the result
        return
    # What this part shows changes only with the job's row (the worker writes it at each step)
    # or, while it waits, with its place in the queue. Streamlit clears whatever a fragment run
    # does not draw, so a look that finds nothing new still draws; it only makes the next one later.
    ahead = store.queue_position(job.id) if job.status == "queued" else None
    live.every(live.period(job.status, live.look((job.status, job.updated, job.cancel_requested, ahead))))
    health.banner()
    if job.status == "queued":
        _waiting(store, job, mine)
        return
    problem = health.disk_problem()
    if logic.paused_by_disk(problem, job.updated, time.time()):
        assert problem is not None
        _paused(store, job, problem)
        return
    if job.is_video:
        _live_video(store, job, mine)
        return

    picture, info = st.columns([3, 2], gap="large")
    with info:
        st.subheader(STATUS_WORDS["running"] + ("… stopping" if job.cancel_requested else ""))
        st.progress(job.fraction, text=f"Step {job.step} of {job.steps}")
        # The row changes a few times a second; between writes the clocks keep ticking.
        now = time.time()
        since = max(0.0, now - job.updated) if job.updated else 0.0
        c1, c2, c3 = st.columns(3)
        c1.metric("Elapsed", logic.format_clock(job.elapsed + since))
        c2.metric("Remaining", logic.format_clock(logic.remaining_seconds(job, state.step_cost(), now)))
        c3.metric("Scale", f"{job.scale or 1} of {job.scales}", help=_SCALE_HELP)
        st.caption(_progress_line(store, job))
        if job.precision:
            st.caption(f"Computing in {precision.WORDS.get(job.precision, job.precision)}.")
        if mine:
            _stop_button(store, job, "End now and keep the picture as it is.", "Stopping; your picture is kept.")
        if job.start_step:
            st.caption(f"Resumed from step {job.start_step} after an interruption.")
    with picture:
        path = store.preview_path(job.id)
        if path is not None:
            # At the finished picture's size (the coarse scales' smaller images scaled up to it):
            # the picture does not jump at each scale, and a small one is not blown up.
            st.image(path.read_bytes(), caption=f"Step {job.step}", width=min(job.width, VIEW_SIDE))
        else:
            # The run starts from the photo; show it until the first painted image arrives.
            thumbs = media.input_thumbnails(str(store.data_dir), job.id, 720)
            if thumbs:
                st.image(thumbs[0], caption="Getting the painter ready…", width=min(job.width, 720))
            else:
                st.info("The first image appears after the first steps…")


def _stop_button(store: JobStore, job: Job, help: str, done: str) -> None:
    """The owner's "Stop and keep" on a running job's page (a picture's or a video's)."""
    if st.button("Stop and keep", type="primary", disabled=job.cancel_requested, key="stop", help=help):
        store.cancel(job.id)
        st.toast(done)


def _paused(store: JobStore, job: Job, problem: str) -> None:
    """A running job whose worker cannot write (the disk is full or read-only): it waits, and
    goes on by itself; its clocks stand still and it cannot be stopped (that is a write too)."""
    picture, info = st.columns([3, 2], gap="large")
    with info:
        st.subheader(logic.paused_words(problem))
        st.progress(job.fraction, text=f"Step {job.step} of {job.steps}")
        st.metric("Elapsed", logic.format_clock(job.elapsed))
        st.caption(
            "It goes on by itself, from its last checkpoint, when the server can write again; "
            "nothing is lost. This page follows it."
        )
    with picture:
        path = store.preview_path(job.id)
        if path is not None:
            st.image(path.read_bytes(), caption=f"Step {job.step}", width=min(job.width, VIEW_SIDE))


def _live_video(store: JobStore, job: Job, mine: bool) -> None:
    """A running video: frames done of the clip's, time per frame, ETA, the latest finished frame."""
    picture, info = st.columns([3, 2], gap="large")
    with info:
        st.subheader(STATUS_WORDS["running"] + ("… stopping" if job.cancel_requested else ""))
        st.progress(job.fraction, text=f"{job.step} of {job.steps} frames finished")
        now = time.time()
        since = max(0.0, now - job.updated) if job.updated else 0.0
        c1, c2, c3 = st.columns(3)
        c1.metric("Elapsed", logic.format_clock(job.elapsed + since))
        c2.metric("Remaining", logic.format_clock(logic.remaining_seconds(job, state.step_cost(), now)))
        c3.metric("Per frame", logic.format_clock(job.frame_seconds), help=_PER_FRAME_HELP)
        st.caption(logic.video_progress_line(job))
        if mine:
            _stop_button(
                store,
                job,
                "End the video at the frames finished so far (at least the first).",
                "Stopping; the frames finished so far become your video.",
            )
        if job.start_step:
            st.caption(f"Resumed at frame {job.start_step + 1} after an interruption; the frames before were kept.")
    with picture:
        path = store.preview_path(job.id)
        if path is not None:
            width = min(job.width, VIEW_SIDE)
            st.image(path.read_bytes(), caption=f"Frame {job.step}, the latest finished", width=width)
        else:
            inputs = media.job_inputs(store.data_dir, job.id)
            if inputs is not None:
                st.image(inputs[0].image, caption="Painting the first frame…", width=min(job.width, 720))


_PER_FRAME_HELP = (
    "The first frame is painted like a picture; each later one starts from the frame before, "
    "carried along the motion, and needs far fewer steps."
)


def _progress_line(store: JobStore, job: Job) -> str:
    """'At 512 × 341 px (the full size): still changing a lot.' -- in place of a loss chart,
    whose numbers mean nothing to a person; what the loss says is how much is still changing."""
    try:
        plan = RunPlan.build(job.config, job.width, job.height)
    except (ConfigError, ImageError):  # a stored config this version cannot plan: no line
        return ""
    scale = min(max(job.scale, 1), len(plan.scales))
    (w, h), _ = plan.scales[scale - 1]
    where = f"At {w} × {h} px" + (" (the full size)" if scale == len(plan.scales) else ", to be refined larger")
    first = plan.end_of_scale(scale - 1)
    losses = [v for s, v in store.loss_history(job.id) if s > first]
    how = logic.settling(losses)
    return f"{where}: {how}." if how else f"{where}."


def _true_size(data: bytes) -> tuple[int, int]:
    """An image's own size in pixels: small pictures are shown at their size, not blown up
    (a wider one is fitted to the column)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.size


_SCALE_HELP = (
    "The picture is painted small first, then refined at larger sizes: the broad strokes are "
    "cheap at low resolution, and the last scale adds the detail."
)


def _waiting(store: JobStore, job: Job, mine: bool) -> None:
    st.subheader(STATUS_WORDS["queued"])
    if job.cancel_requested:
        st.info("Finishing from where it was interrupted, then stopping.")
    else:
        st.info(
            _wait_line(store, job) + " This page updates by itself; you can close it and come back with the same link."
        )
    if mine and st.button("Cancel", key="cancel", help="Take it out of the queue."):
        store.cancel(job.id)
        st.rerun()


def _wait_line(store: JobStore, job: Job) -> str:
    """'2 pictures ahead of yours: yours starts in about 40 s and takes about 7 s.' The queue's
    time is the run plan's for each picture ahead (``logic.wait_seconds``)."""
    cost, now = state.step_cost(), time.time()
    ahead = store.ahead(job.id)
    own = logic.planned_seconds(job, cost, now)
    takes = f"takes about {logic.format_duration(own)}"
    if not ahead:
        return f"Yours is next: it starts as soon as the painter is free, and {takes}."
    wait = logic.wait_seconds(ahead, cost, now, len(store.workers()))
    who = logic.queue_words(len(ahead))  # the one painting now counts: it is painted before yours
    return f"{who[0].upper()}{who[1:]}: yours starts in about {logic.format_duration(wait)} and {takes}."


def finished(store: JobStore, job: Job, mine: bool) -> None:
    """The result (or the reason there is none), downloads, settings, tweak and run again."""
    if job.status == "done" and job.is_video:
        _finished_video(store, job)
    elif job.status == "done":
        path = store.result_path(job.id)
        if path is None:
            st.error("The picture is marked finished but its file is missing from the data folder.")
            return
        note = (
            f"Stopped at step {job.step} of {job.steps}, as you asked." if job.stopped_early else f"{job.steps} steps."
        )
        if job.precision:
            note += f" Computed in {job.precision}."
        st.success(
            f"{STATUS_WORDS['done']}: {job.width} × {job.height} px in {logic.format_duration(job.elapsed)}. {note}"
        )
        result, side = st.columns([3, 1], gap="large")
        # The page shows the job's view (at most VIEW_SIDE px: a print's 8192 px file is never
        # decoded or sent to show it); the buttons make the full-size files only when clicked.
        view = store.preview_path(job.id)
        shown = (
            view.read_bytes() if view is not None else media.file_thumbnail(str(path), media.mtime_ns(path), VIEW_SIDE)
        )
        with result:
            _before_after(store, job, shown, _true_size(shown))
        with side:
            name = f"painterly-{job.id[:8]}"
            st.download_button(
                "Download PNG",
                functools.partial(path.read_bytes),
                f"{name}.png",
                "image/png",
                on_click="ignore",
                key="png",
                width="stretch",
            )
            st.download_button(
                "Download JPEG",
                functools.partial(media.jpeg_of, str(path)),
                f"{name}.jpg",
                "image/jpeg",
                on_click="ignore",
                key="jpeg",
                width="stretch",
            )
            if st.button(
                "Tweak and run again",
                type="primary",
                key="tweak",
                width="stretch",
                help="The same pictures and settings in the form, to change and run again.",
            ):
                state.go(tweak=job.id)
            _inputs_column(store, job)
        _share_link(job)
    else:
        if job.status == "failed":
            st.error(f"{STATUS_WORDS['failed']}: {job.error or 'no reason was recorded'}")
        else:
            st.info(f"This {'video' if job.is_video else 'picture'} was cancelled before it started.")
        # A video's clip is not brought back into the form: upload it again in Video mode.
        if not job.is_video and st.button("Try again with these pictures", type="primary", key="tweak"):
            state.go(tweak=job.id)
        _inputs_row(store, job)
    _settings(job)


def _finished_video(store: JobStore, job: Job) -> None:
    """The finished video, playable, with its download, and what it was made from."""
    path = store.video_path(job.id)
    if path is None:
        st.error("The video is marked finished but its file is missing from the data folder.")
        return
    note = (
        f"Stopped after {job.step} of its frames, as you asked."
        if job.stopped_early
        else "Every frame, with the sound."
    )
    st.success(
        f"{STATUS_WORDS['done']}: {job.step} frames of {job.width} × {job.height} px in "
        f"{logic.format_duration(job.elapsed)}. {note}"
    )
    data = media.file_bytes(str(path), media.mtime_ns(path))
    result, side = st.columns([3, 1], gap="large")
    with result:
        st.video(data, format="video/mp4")
    with side:
        media.mp4_download(job, data, key="mp4")
        inputs = media.job_inputs(store.data_dir, job.id)
        if inputs is not None:
            content, styles = inputs
            st.image(media.jpeg(content.key, content.image, 360), caption="Your clip's first frame", width="stretch")
            for i, s in enumerate(styles):
                st.image(
                    media.jpeg(s.key, s.image, 360),
                    caption=f"Painting {i + 1}" if len(styles) > 1 else "Painting",
                    width="stretch",
                )
    _share_link(job)


def _before_after(store: JobStore, job: Job, shown: bytes, size: tuple[int, int]) -> None:
    """The finished picture (``shown``: a JPEG of its view, ``size``), and what it is compared
    with: the instant sketch (what a second gives) and the photo, each in a tab at the same size,
    so flipping between them shows what the minutes bought. At its own size when smaller than
    the column: never blown up. All three are encoded once (``media``), not at each rerun."""
    width = size[0]
    tabs = st.tabs(["Finished", "Instant sketch", "Your photo"])
    tabs[0].image(shown, width=width)
    notes = store.notes(job.id)
    strength = notes.get("strength", logic.STRENGTH_DEFAULT)
    sketch, photo, why = media.before_after(
        str(store.data_dir),
        job.id,
        size,
        logic.preview_strength(strength if isinstance(strength, (int, float)) else logic.STRENGTH_DEFAULT),
        tuple(job.config.style_blend),
        job.config.color,
        float(job.config.color_strength),
    )
    if photo is None:
        return
    with tabs[1]:
        if sketch is None:
            st.caption(f"No instant sketch on this server ({why}).")
        else:
            tabs[1].image(sketch, width=width)
            st.caption(
                "The instant sketch: one pass of a fast network, in about a second. The finished picture "
                f"took {logic.format_duration(job.elapsed)} of optimisation: brushwork and colour taken from "
                "the painting itself, and your photo's detail kept where the sketch smears it."
            )
    tabs[2].image(photo, width=width)


def _share_link(job: Job) -> None:
    """This picture's link without the owner token (which would also open the gallery)."""
    try:
        base = (st.context.url or "").split("?")[0]
    except Exception:  # noqa: BLE001 -- not available in every runtime (e.g. tests)
        base = ""
    st.caption("To share this picture, send this link (it does not open your gallery):")
    st.code(f"{base.rstrip('/')}/?{state.JOB_PARAM}={job.id}", language=None)


def _settings(job: Job) -> None:
    with st.expander("The exact settings used"):
        changed = logic.settings_summary(job.config)
        if changed:
            st.caption("Different from the engine's defaults: " + ", ".join(f"{k} = {v!r}" for k, v in changed.items()))
        st.json(job.config.to_dict(), expanded=True)


def _inputs_row(store: JobStore, job: Job) -> None:
    """The photo and painting(s) the job started from, small."""
    thumbs = media.input_thumbnails(str(store.data_dir), job.id, 240)
    if not thumbs:
        return
    st.caption("Made from")
    cols = st.columns(6)
    cols[0].image(thumbs[0], caption="photo", width="stretch")
    styles = thumbs[1:]
    for i, s in enumerate(styles[:5]):
        cols[i + 1].image(s, caption=f"painting {i + 1}" if len(styles) > 1 else "painting", width="stretch")


def _inputs_column(store: JobStore, job: Job) -> None:
    """The inputs beside the result."""
    thumbs = media.input_thumbnails(str(store.data_dir), job.id, 360)
    if not thumbs:
        return
    st.image(thumbs[0], caption="Your photo", width="stretch")
    styles = thumbs[1:]
    for i, s in enumerate(styles):
        st.image(s, caption=f"Painting {i + 1}" if len(styles) > 1 else "Painting", width="stretch")
