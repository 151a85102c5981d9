""" "My pictures": this browser's jobs, newest first, in the sidebar.

The list is the JobStore's ``list(owner)`` for the owner token in the URL, so another
browser (another token) never sees these, and a reload or a new tab with the same link does.
"""

from __future__ import annotations

import streamlit as st

from . import media, state
from .jobpage import STATUS_WORDS

SHOWN = 24


def sidebar(current: str | None) -> None:
    """The "new picture" button and the gallery."""
    store, owner = state.store(), state.owner()
    with st.sidebar:
        if st.button(
            "New picture", icon=":material/add:", type="primary" if current else "secondary", width="stretch", key="new"
        ):
            state.go()
        st.header("My pictures")
        jobs = store.list(owner, limit=SHOWN)
        if not jobs:
            st.caption("Your pictures appear here. Keep this page's link (bookmark it) to find them again.")
            return
        st.caption("Only this browser's link shows them; bookmark it to come back.")
        cols = st.columns(2)
        for i, job in enumerate(jobs):
            with cols[i % 2]:
                path = store.result_path(job.id) or store.preview_path(job.id)
                if path is not None:
                    st.image(media.file_thumbnail(str(path), media.mtime_ns(path), 240), width="stretch")
                else:  # not started yet: its photo
                    inputs = media.job_inputs(store.data_dir, job.id)
                    if inputs is not None:
                        st.image(media.thumbnail(inputs[0].image, 240), width="stretch")
                label = STATUS_WORDS.get(job.status, job.status)
                if st.button(
                    label,
                    key=f"open:{job.id}",
                    width="stretch",
                    type="primary" if job.id == current else "secondary",
                ):
                    state.go(job=job.id)
