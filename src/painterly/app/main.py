"""The studio's Streamlit script (``streamlit run`` this file, or ``painterly app``)."""

from __future__ import annotations

import streamlit as st

from painterly.app import errors, form, gallery, health, jobpage, state

st.set_page_config(page_title="painterly studio", page_icon="🎨", layout="wide")

state.calibrate()  # begun by the server at start (serve.warm_up); else by this first visit
job_id = st.query_params.get(state.JOB_PARAM)
if job_id is None:  # a job's page draws it itself: in its live part while the job is live
    health.banner()  # a full disk, a read-only folder, a painter that keeps stopping
view = st.query_params.get(state.VIEW_PARAM)
with errors.guard():  # each part fails alone, in one line with an id; never a traceback
    gallery.sidebar(job_id, view)
with errors.guard():
    if job_id is not None:
        jobpage.page(job_id)  # a malformed or unknown id gets "not found"
    elif view == "pictures":
        gallery.page()
    else:
        form.page()
