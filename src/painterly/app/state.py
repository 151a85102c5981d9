"""Where the studio keeps its state: the shared JobStore, and the URL.

Session state dies with the tab, so everything that must survive a reload, a closed tab or a
restarted server lives in the URL's query parameters:

- ``me``: this browser's owner token (unguessable; names its "My pictures" gallery);
- ``job``: the job on screen;
- ``from``: the job whose settings and pictures prefill the form ("tweak and run again").
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..jobs import JobStore, default_data_dir
from .logic import new_owner_token, valid_token

OWNER_PARAM, JOB_PARAM, FROM_PARAM = "me", "job", "from"


@st.cache_resource(show_spinner=False)
def _store(data_dir: str) -> JobStore:
    return JobStore(data_dir)


def data_dir() -> Path:
    """The studio's data folder ($PAINTERLY_HOME, which the launcher sets)."""
    return default_data_dir().expanduser().resolve()


def store() -> JobStore:
    """The process-wide JobStore for $PAINTERLY_HOME (thread-safe: one connection per thread)."""
    return _store(str(data_dir()))


def owner() -> str:
    """This browser's owner token, created (and put in the URL) on the first visit."""
    token = st.query_params.get(OWNER_PARAM)
    if not valid_token(token):
        token = new_owner_token()
        st.query_params[OWNER_PARAM] = token
    return token  # type: ignore[return-value]


def param(name: str) -> str | None:
    """A job id from the URL, or None when absent or malformed."""
    value = st.query_params.get(name)
    return value if valid_token(value) else None


def go(*, job: str | None = None, tweak: str | None = None) -> None:
    """Show a job (``job``), a form prefilled from one (``tweak``), or a fresh form; then rerun."""
    for key in (JOB_PARAM, FROM_PARAM):
        if key in st.query_params:
            del st.query_params[key]
    if job:
        st.query_params[JOB_PARAM] = job
    if tweak:
        st.query_params[FROM_PARAM] = tweak
    st.rerun()
