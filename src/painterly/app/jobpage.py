"""The page of one job: waiting, then watching it form, then the result.

While the job is queued or running, a fragment redraws itself every second from the job
store (the worker is another process; nothing here runs in a thread). When the job ends,
the fragment asks for one full rerun, which draws the finished page without the timer.
"""

from __future__ import annotations

import time

import altair as alt
import pandas as pd
import streamlit as st

from .. import precision
from ..jobs import Job, JobStore
from . import errors, logic, media, state

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
    st.title("Your picture" if mine else "A picture")
    if job.active:
        live(job_id, mine)
        _inputs_row(store, job)
    else:
        finished(store, job, mine)


@st.fragment(run_every=1.0)
@errors.guard()  # its reruns too: one line and an id, never a traceback
def live(job_id: str, mine: bool) -> None:
    """The part of the page that follows a queued or running job, redrawn every second."""
    store = state.store()
    job = store.get(job_id)
    if job is None or not job.active:
        st.rerun()  # the whole page: it now shows the result
        return
    if job.status == "queued":
        _waiting(store, job, mine)
        return

    picture, info = st.columns([3, 2], gap="large")
    with info:
        st.subheader(STATUS_WORDS["running"] + ("… stopping" if job.cancel_requested else ""))
        st.progress(job.fraction, text=f"Step {job.step} of {job.steps}")
        # The row changes at each step; between steps the clocks keep ticking.
        since = max(0.0, time.time() - job.updated) if job.updated else 0.0
        eta = None if job.eta is None else max(0.0, job.eta - since)
        c1, c2, c3 = st.columns(3)
        c1.metric("Elapsed", logic.format_clock(job.elapsed + since))
        c2.metric("Remaining", logic.format_clock(eta))
        c3.metric("Scale", f"{job.scale or 1} of {job.scales}", help=_SCALE_HELP)
        if job.precision:
            st.caption(f"Computing in {precision.WORDS.get(job.precision, job.precision)}.")
        loss_curve(store.loss_history(job.id))
        if mine:
            if st.button(
                "Stop and keep",
                type="primary",
                disabled=job.cancel_requested,
                key="stop",
                help="End now and keep the picture as it is.",
            ):
                store.cancel(job.id)
                st.toast("Stopping; your picture is kept.")
        if job.start_step:
            st.caption(f"Resumed from step {job.start_step} after an interruption.")
    with picture:
        path = store.preview_path(job.id)
        if path is not None:
            st.image(path.read_bytes(), caption=f"Step {job.step}", width="stretch")
        else:
            # The run starts from the photo; show it until the first painted image arrives.
            inputs = media.job_inputs(store.data_dir, job.id)
            if inputs is not None:
                st.image(inputs[0].image, caption="Getting the painter ready…", width="stretch")
            else:
                st.info("The first image appears after the first steps…")


_SCALE_HELP = (
    "The picture is painted small first, then refined at larger sizes: the broad strokes are "
    "cheap at low resolution, and the last scale adds the detail."
)


def _waiting(store: JobStore, job: Job, mine: bool) -> None:
    pos = store.queue_position(job.id)
    st.subheader(STATUS_WORDS["queued"])
    if job.cancel_requested:
        st.info("Finishing from where it was interrupted, then stopping.")
    elif pos == 0 or pos is None:
        st.info("Yours is next; it starts as soon as the painter is free.")
    else:
        st.info(
            f"{pos} picture{'s' if pos != 1 else ''} ahead of yours. "
            "This page updates by itself; you can close it and come back with the same link."
        )
    if mine and st.button("Cancel", key="cancel", help="Take it out of the queue."):
        store.cancel(job.id)
        st.rerun()


def loss_curve(history: list[tuple[int, float]]) -> None:
    """The total loss per step, log scale (it falls by orders of magnitude)."""
    if len(history) < 2:
        return
    step = max(1, len(history) // 400)  # at most ~400 points
    df = pd.DataFrame(history[::step] + ([history[-1]] if (len(history) - 1) % step else []), columns=["step", "loss"])
    df = df[df["loss"] > 0]
    chart = (
        alt.Chart(df, height=160, title="How far from the goal (lower is better)")
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            # The values mean little to a person; the shape (falling, flattening) is the point.
            # Fitted, not "nice": rounded out to whole decades (1e5..1e8) the curve sat flat at
            # the bottom of the small plot (seen in Chromium screenshots).
            y=alt.Y(
                "loss:Q",
                title="loss (log scale)",
                scale=alt.Scale(type="log", nice=False, domain=[float(df["loss"].min()), float(df["loss"].max())]),
                axis=alt.Axis(labels=False, ticks=False),
            ),
        )
    )
    st.altair_chart(chart, width="stretch")


def finished(store: JobStore, job: Job, mine: bool) -> None:
    """The result (or the reason there is none), downloads, settings, tweak and run again."""
    if job.status == "done":
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
        # At most 2x its pixels (capped by the column): a small picture fills the space without mush.
        result.image(path.read_bytes(), width=min(2 * job.width, max(job.width, 720)))
        with side:
            files = media.downloads(str(path), media.mtime_ns(path))
            name = f"painterly-{job.id[:8]}"
            st.download_button(
                "Download PNG", files["PNG"], f"{name}.png", "image/png", on_click="ignore", key="png", width="stretch"
            )
            st.download_button(
                "Download JPEG",
                files["JPEG"],
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
            st.info("This picture was cancelled before it started.")
        if st.button("Try again with these pictures", type="primary", key="tweak"):
            state.go(tweak=job.id)
        _inputs_row(store, job)
    _settings(job)


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
    inputs = media.job_inputs(store.data_dir, job.id)
    if inputs is None:
        return
    content, styles = inputs
    st.caption("Made from")
    cols = st.columns(6)
    cols[0].image(media.thumbnail(content.image, 240), caption="photo", width="stretch")
    for i, s in enumerate(styles[:5]):
        cols[i + 1].image(
            media.thumbnail(s.image, 240),
            caption=f"painting {i + 1}" if len(styles) > 1 else "painting",
            width="stretch",
        )


def _inputs_column(store: JobStore, job: Job) -> None:
    """The inputs beside the result."""
    inputs = media.job_inputs(store.data_dir, job.id)
    if inputs is None:
        return
    content, styles = inputs
    st.image(media.thumbnail(content.image, 360), caption="Your photo", width="stretch")
    for i, s in enumerate(styles):
        st.image(
            media.thumbnail(s.image, 360),
            caption=f"Painting {i + 1}" if len(styles) > 1 else "Painting",
            width="stretch",
        )
