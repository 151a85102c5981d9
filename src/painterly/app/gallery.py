""" "My pictures": this browser's jobs, newest first: the latest in the sidebar, all of them on
their own page (``?view=pictures``), both live while a job runs (each page has one live part:
the entries on the form's page, the grid on this page; a job's page follows its job).

The list is the JobStore's ``list(owner)`` for this visit's owner token (the link's, else this
browser's cookie: ``state.owner``), so another browser never sees these. Each entry is a link
(its thumbnail opens the picture); a finished one can be deleted, files and all, and only by
its owner: the store checks the token again, whatever the page asked.
"""

from __future__ import annotations

import base64
import html
import time
from typing import Optional

import streamlit as st

from ..jobs import Job, JobStore
from . import health, logic, media, state
from . import live as timer

SIDEBAR_SHOWN = 6
PAGE_SHOWN = 60
LIVE_EVERY = 2.0  # seconds between redraws at the quickest, while one of the pictures is running
COLUMNS = 4

_CSS = """<style>
.pt-card{display:block;text-decoration:none;color:inherit;border-radius:8px;padding:4px;border:1px solid #e6e6ea}
.pt-card:hover{border-color:#ff4b4b;background:#fff5f5}
.pt-row{display:flex;gap:8px;align-items:center}
.pt-thumb{width:100%;aspect-ratio:4/3;object-fit:cover;border-radius:6px;display:block;background:#f0f2f6}
.pt-small{width:64px;height:48px;object-fit:cover;border-radius:4px;flex:none;background:#f0f2f6}
.pt-dim{opacity:.45;filter:grayscale(60%)}
.pt-status{font-weight:600;font-size:.9rem;margin:4px 0 0 0;line-height:1.25}
.pt-facts{font-size:.78rem;color:#6b6f76;line-height:1.3}
.pt-paint{width:26px;height:26px;object-fit:cover;border-radius:3px;margin:3px 3px 0 0;vertical-align:middle}
.pt-bar{height:4px;background:#e6e6ea;border-radius:2px;margin-top:3px}
.pt-bar>div{height:4px;background:#ff4b4b;border-radius:2px}
.pt-now{border-color:#ff4b4b}
</style>"""


def sidebar(current: Optional[str], view: Optional[str]) -> None:
    """ "New picture", "My pictures" and this browser's latest pictures, live."""
    store, owner = state.store(), state.owner()
    with st.sidebar:
        if st.button(
            "New picture",
            icon=":material/add:",
            type="primary" if (current or view) else "secondary",
            width="stretch",
            key="new",
        ):
            state.go()
        if st.button("My pictures", icon=":material/photo_library:", width="stretch", key="pictures"):
            state.go(pictures=True)
        jobs = store.list(owner, limit=SIDEBAR_SHOWN)
        if not jobs:
            st.caption("Your pictures appear here. This browser remembers them; the link with me= opens them anywhere.")
            return
        # Live while one of this browser's pictures is: on a job's page too (that picture's entry
        # shows its progress as the page does; a fragment cannot draw into the sidebar from the
        # page's own). The gallery page's grid is that page's live part.
        if view or not any(j.active for j in jobs):
            _sidebar_entries(current, jobs)
        else:
            _live_entries(current)


def _sidebar_entries(current: Optional[str], jobs: list[Job]) -> None:
    store = state.store()
    cards = [_card(store, job, compact=True, current=current) for job in jobs]
    st.html(_CSS + "".join(f'<div style="margin-bottom:6px">{c}</div>' for c in cards))


@st.fragment  # its timer is set from inside, by what it saw (_follow)
def _live_entries(current: Optional[str]) -> None:
    jobs = state.store().list(state.owner(), limit=SIDEBAR_SHOWN)
    _follow(jobs)
    _sidebar_entries(current, jobs)


def _follow(jobs: list[Job]) -> None:
    """Look again in LIVE_EVERY s while one of ``jobs`` runs, a few seconds while they only
    wait, later when nothing changed since the last look; not at all when none is live."""
    status = next((s for s in ("running", "queued") if any(j.status == s for j in jobs)), "done")
    seen = tuple((j.id, j.status, j.updated) for j in jobs)
    seconds = timer.period(status, timer.look(seen))
    timer.every(None if seconds is None else max(LIVE_EVERY, seconds))


def page() -> None:
    """The gallery: every picture of this browser in a grid, live, each to open or delete."""
    store, owner = state.store(), state.owner()
    st.title("My pictures")
    jobs = store.list(owner, limit=PAGE_SHOWN)
    if not jobs:
        st.info("No pictures yet. Make one with **New picture**; it will be listed here.")
        return
    st.caption(
        "This browser remembers your pictures. To open them in another browser, use this page's "
        "link (it holds your key, me=...); to show one picture to someone, send its own page's share link."
    )
    if any(j.active for j in jobs):
        st.fragment(_grid)()  # the page's one live part; its timer is set from inside (_follow)
    else:
        _grid()


def _grid() -> None:
    store, owner = state.store(), state.owner()
    jobs = store.list(owner, limit=PAGE_SHOWN)
    _follow(jobs)  # nothing outside a fragment: no timer
    for row in range(0, len(jobs), COLUMNS):
        cols = st.columns(COLUMNS, gap="medium")
        for col, job in zip(cols, jobs[row : row + COLUMNS]):
            with col:
                st.html(_CSS + _card(store, job, compact=False))
                if job.is_video and job.status == "done":
                    _play_button(store, job)
                if not job.active:
                    _delete_button(store, job, owner)


def _play_button(store: JobStore, job: Job) -> None:
    """A finished video, to play and download without leaving the gallery."""
    path = store.video_path(job.id)
    if path is None:
        return
    with st.popover("Play", icon=":material/play_arrow:", width="stretch"):
        data = media.file_bytes(str(path), media.mtime_ns(path))
        st.video(data, format="video/mp4")
        media.mp4_download(job, data, key=f"mp4:{job.id}")


def _delete_button(store: JobStore, job: Job, owner: str) -> None:
    with st.popover("Delete", icon=":material/delete:", width="stretch"):
        st.caption("The picture, its inputs and its files are removed from this computer.")
        if st.button("Delete for good", type="primary", key=f"delete:{job.id}", width="stretch"):
            if store.delete(job.id, owner):
                st.toast("Deleted.")
            st.rerun()


def _card(store: JobStore, job: Job, *, compact: bool, current: Optional[str] = None) -> str:
    """One entry: its picture (the result, the picture forming, or the photo while waiting),
    how it stands or ended, and, on the page, its size, paintings and date. A link to it."""
    side = 160 if compact else 360
    picture, dim = _picture(store, job, side)
    ahead = store.queue_position(job.id) if job.status == "queued" else None
    problem = health.disk_problem() if job.status == "running" else None
    paused = problem if logic.paused_by_disk(problem, job.updated, time.time()) else None
    status = html.escape(logic.job_status(job, ahead, paused))
    facts = html.escape(logic.job_facts(job, _timezone()))
    img = (
        f'<img class="{"pt-small" if compact else "pt-thumb"}{" pt-dim" if dim else ""}" '
        f'src="{picture}" alt="picture {html.escape(job.id[:6])}">'
        if picture
        else f'<div class="{"pt-small" if compact else "pt-thumb"}"></div>'
    )
    bar = (
        f'<div class="pt-bar"><div style="width:{round(100 * job.fraction)}%"></div></div>'
        if job.status == "running"
        else ""
    )
    href = html.escape(state.link(job=job.id))
    now = " pt-now" if job.id == current else ""
    if compact:
        return (
            f'<a class="pt-card{now}" href="{href}" title="Open this picture"><div class="pt-row">{img}'
            f'<div><div class="pt-status">{status}</div>{bar}<div class="pt-facts">{facts}</div></div></div></a>'
        )
    paintings = "".join(f'<img class="pt-paint" src="{p}" alt="painting">' for p in _paintings(store, job))
    return (
        f'<a class="pt-card" href="{href}" title="Open this picture">{img}'
        f'<div class="pt-status">{status}</div>{bar}<div class="pt-facts">{facts}</div>'
        f"<div>{paintings}</div></a>"
    )


def _picture(store: JobStore, job: Job, side: int) -> tuple[Optional[str], bool]:
    """(a data: URL, dimmed?): the result, else the latest image (a video's latest frame), else the
    photo (a video's first frame; dimmed)."""
    path = store.result_path(job.id) or store.preview_path(job.id)
    if path is not None:
        return _data_url(media.file_thumbnail(str(path), media.mtime_ns(path), side)), False
    thumbs = media.input_thumbnails(str(store.data_dir), job.id, side)
    return (_data_url(thumbs[0]), True) if thumbs else (None, True)


def _paintings(store: JobStore, job: Job) -> list[str]:
    thumbs = media.input_thumbnails(str(store.data_dir), job.id, 64)
    return [_data_url(t) for t in thumbs[1:6]] if thumbs else []


def _data_url(jpeg: bytes) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


def _timezone() -> Optional[str]:
    try:
        return st.context.timezone
    except Exception:  # noqa: BLE001 -- no browser behind this run (AppTest)
        return None
