"""No traceback ever reaches a page: an unexpected error becomes one sentence and an id.

The person reads what happened in a line, with a short id; the server's log gets the whole
traceback (with its paths, which the page must not show) under the same id, so whoever runs
the studio can find it. Streamlit's own handler is the backstop for anything that still gets
past (``client.showErrorDetails none`` in ``launcher.streamlit_command``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sys
from typing import Iterator

import streamlit as st

from ..jobs import health

log = logging.getLogger("painterly.studio")
if not log.handlers:  # the server's stderr is its log (Streamlit configures only its own loggers)
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)


def report(e: BaseException) -> str:
    """Log ``e`` with its traceback under a new id; return the id."""
    error_id = secrets.token_hex(4)
    log.error("error %s: %s: %s", error_id, type(e).__name__, e, exc_info=e)
    return error_id


def message(e: BaseException, error_id: str) -> str:
    """The one line a person reads (no paths, no exception text: those are in the log)."""
    if health.disk_fault(e):
        what = "the server cannot write its files now (its disk is full or read-only)"
    else:
        what = "something went wrong on the server"
    return (
        f"Sorry, {what}; this part of the page could not be shown. Reload to try again; if it keeps "
        f"happening, tell whoever runs the studio: error {error_id}."
    )


@contextlib.contextmanager
def guard() -> Iterator[None]:
    """Run a part of the page; an exception becomes ``message`` there (the rest of the page
    still draws). Streamlit's rerun and stop signals are BaseExceptions and pass through.
    Usable as a decorator too, under ``@st.fragment``, so a fragment's reruns are covered."""
    try:
        yield
    except Exception as e:  # noqa: BLE001 -- the point: nothing unexpected reaches the page raw
        st.error(message(e, report(e)), icon=":material/error:")
