"""How often a live part of a page looks again: one timer per page, as rare as what it shows.

A browser reruns a fragment on a timer of its own (Streamlit's ``run_every``), and the server
runs every session's reruns under one GIL: with 8 browsers watching, three timers per page
(the live view every second, the sidebar every 2 s, the banner every 5 s) were ~14 reruns a
second, a third of a core (benchmarks/RESULTS.md, "Eight people at once"). So each page has at
most one live fragment; its period follows what can change (``period``); it is told to the
browser from inside the fragment's run, and only when it changes (``every``); a page with
nothing live has no timer at all.

Streamlit sets a fragment's timer only where the fragment is declared (a full run), with one
fixed period. A fragment rerun can change it with the same message Streamlit sends
(``auto_rerun`` for a fragment id; ``stop_auto_rerun`` to end it), which the browser applies
whenever it arrives; a full run clears every timer in the browser first.
"""

from __future__ import annotations

from typing import Hashable, Optional

import streamlit as st

RUNNING = 1.0  # a picture forming: the new image on screen within about a second
RUNNING_IDLE = 2.0  # ... when the worker wrote nothing since the last two looks (slow steps)
QUEUED = 3.0  # waiting: its place in the queue, and its start, within a few seconds
QUEUED_IDLE = 5.0  # ... when the queue has not moved since the last two looks
_KEY = "_live"  # session state: {fragment id: (what it saw, looks unchanged, period told)}


def period(status: str, unchanged: int) -> Optional[float]:
    """Seconds until the next look at a job in ``status`` after ``unchanged`` looks in a row that
    found nothing new; None: nothing will change, no timer. (Pure.)"""
    if status == "running":
        return RUNNING_IDLE if unchanged >= 2 else RUNNING
    if status == "queued":
        return QUEUED_IDLE if unchanged >= 2 else QUEUED
    return None


def look(seen: Hashable) -> int:
    """In a live fragment's run: record what this look saw (``seen``: the parts of the job
    that the fragment shows); return how many looks in a row, this one included, found the
    same as the one before (0: something changed, or the first look)."""
    fid = _fragment_id()
    looks = _looks()
    before, unchanged, told = looks.get(fid, (None, 0, None))
    unchanged = unchanged + 1 if before == seen else 0
    looks[fid] = (seen, unchanged, told)
    return unchanged


def every(seconds: Optional[float]) -> None:
    """In a live fragment's run: look again in ``seconds`` (None: stop). The browser is told
    only when it changes; a full run always tells it (its timers were all cleared)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx()
    fid = _fragment_id()
    if ctx is None or fid is None:
        return
    looks = _looks()
    seen, unchanged, told = looks.get(fid, (None, 0, None))
    full_run = not ctx.fragment_ids_this_run
    if not full_run and told == seconds:
        return
    if full_run and seconds is None:  # no timer was left to stop
        looks[fid] = (seen, unchanged, None)
        return
    msg = ForwardMsg()
    if seconds is None:
        msg.stop_auto_rerun.fragment_ids.append(fid)
    else:
        msg.auto_rerun.interval = seconds
        msg.auto_rerun.fragment_id = fid
    ctx.enqueue(msg)
    looks[fid] = (seen, unchanged, seconds)


def _looks() -> dict:
    return st.session_state.setdefault(_KEY, {})  # type: ignore[no-any-return]


def _fragment_id() -> Optional[str]:
    from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState

    try:
        return ThreadState.get().fragment_id
    except RuntimeError:  # not in a script run
        return None
