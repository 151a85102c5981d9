"""Where the studio keeps its state: the shared JobStore, and the URL.

Session state dies with the tab, so everything that must survive a reload, a closed tab or a
restarted server lives in the URL's query parameters:

- ``me``: this browser's owner token (unguessable; names its "My pictures" gallery);
- ``job``: the job on screen;
- ``from``: the job whose settings and pictures prefill the form ("tweak and run again");
- ``view``: ``pictures`` for the gallery page.

The owner token is also kept in a cookie of this browser, so a typed address or a new tab
finds the gallery without the link (``logic.owner_choice`` decides which token wins).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

import streamlit as st

from ..jobs import JobStore, default_data_dir
from ..plan import DEFAULT_STEP_COST, StepCost
from .logic import owner_choice, valid_token

OWNER_PARAM, JOB_PARAM, FROM_PARAM, VIEW_PARAM = "me", "job", "from", "view"
OWNER_COOKIE = "painterly_me"
COOKIE_DAYS = 400  # the longest lifetime browsers grant a cookie


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
    """This visit's owner token: the link's, else this browser's cookie, else a new one; kept in
    the URL (to bookmark) and in the cookie (to find the gallery without the link)."""
    from_url = st.query_params.get(OWNER_PARAM)
    token, remember = owner_choice(from_url, _cookie())
    if from_url != token:
        st.query_params[OWNER_PARAM] = token
    if remember and not st.session_state.get("_cookie_set") == token:
        _set_cookie(token)
        st.session_state["_cookie_set"] = token
    return token


def _cookie() -> Optional[str]:
    try:
        return st.context.cookies.get(OWNER_COOKIE)
    except Exception:  # noqa: BLE001 -- no request behind this run (AppTest): no cookie
        return None


def _set_cookie(token: str) -> None:
    """Write the cookie from the page (Streamlit sets none itself). SameSite=Strict: another
    site's page never sends it; the token is an id of ours ([A-Za-z0-9_-]), safe in a script."""
    assert valid_token(token)
    script = (
        f"<script>document.cookie = {json.dumps(OWNER_COOKIE + '=' + token)} + "
        f"'; Path=/; Max-Age={COOKIE_DAYS * 86400}; SameSite=Strict';</script>"
    )
    with st.sidebar:  # an empty element: kept out of the main page's layout
        st.html(script, unsafe_allow_javascript=True, width=1)


def param(name: str) -> str | None:
    """A job id from the URL, or None when absent or malformed."""
    value = st.query_params.get(name)
    return value if valid_token(value) else None


def go(*, job: str | None = None, tweak: str | None = None, pictures: bool = False) -> None:
    """Show a job (``job``), a form prefilled from one (``tweak``), the gallery (``pictures``),
    or a fresh form; then rerun."""
    for key in (JOB_PARAM, FROM_PARAM, VIEW_PARAM):
        if key in st.query_params:
            del st.query_params[key]
    if job:
        st.query_params[JOB_PARAM] = job
    if tweak:
        st.query_params[FROM_PARAM] = tweak
    if pictures:
        st.query_params[VIEW_PARAM] = "pictures"
    st.rerun()


def link(*, job: Optional[str] = None) -> str:
    """A relative link (for an ``<a href>``) to a job's page, with this visit's owner token."""
    token = st.query_params.get(OWNER_PARAM)
    parts = [f"{JOB_PARAM}={job}"] if job else []
    if valid_token(token):
        parts.append(f"{OWNER_PARAM}={token}")
    return "?" + "&".join(parts)


# --- this machine's step cost, measured once per studio start ----------------------------------


class _Calibration:
    """Runs ``python -m painterly.calibrate`` in the background (the web process never loads
    torch) and holds the result; until it is in, or if it fails, the plan's default figures.
    It runs at the workers' priority (``launcher.WORKER_NICE``): timed as the jobs will run."""

    def __init__(self) -> None:
        self.cost: StepCost = DEFAULT_STEP_COST
        self.done = threading.Event()
        if os.environ.get("PAINTERLY_CALIBRATE", "1") == "0":  # tests that need fixed figures
            self.done.set()
            return
        threading.Thread(target=self._run, name="painterly-calibrate", daemon=True).start()

    def _run(self) -> None:
        from .launcher import WORKER_NICE

        try:
            out = subprocess.run(
                [sys.executable, "-m", "painterly.calibrate", *(["--nice", str(WORKER_NICE)] if WORKER_NICE else [])],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode == 0:
                self.cost = StepCost(**json.loads(out.stdout.strip().splitlines()[-1]), measured=True)
        except (OSError, ValueError, TypeError, IndexError, subprocess.SubprocessError):
            pass  # the default figures stay; the estimate still learns from finished pictures
        finally:
            self.done.set()


_calibration: Optional[_Calibration] = None
_calibration_lock = threading.Lock()


def calibrate() -> _Calibration:
    """This process's one calibration, started on the first call: by ``serve`` when the server
    starts (so the first visitors do not wait for it), else by the first visit."""
    global _calibration
    with _calibration_lock:
        if _calibration is None:
            _calibration = _Calibration()
        return _calibration


def step_cost() -> StepCost:
    """What a step costs on this machine: measured at start-up, or the plan's figures meanwhile."""
    return calibrate().cost
