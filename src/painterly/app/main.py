"""The studio's Streamlit script (``streamlit run`` this file, or ``painterly app``)."""

from __future__ import annotations

import streamlit as st

from painterly.app import form, gallery, jobpage, state

st.set_page_config(page_title="painterly studio", page_icon="🎨", layout="wide")

job_id = st.query_params.get(state.JOB_PARAM)
gallery.sidebar(job_id)
if job_id is not None:
    jobpage.page(job_id)  # a malformed or unknown id gets "not found"
else:
    form.page()
