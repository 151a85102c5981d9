"""The banner at the top of every page: the disk is full or read-only, or the painter keeps
stopping. A state of the machine, said plainly, while the page keeps working.

It has no timer of its own: a page with something live (a job's page while it runs or waits)
draws it inside its one live fragment, so a person watching a job sees the disk fill up or the
workers stop (and the banner go when things are well again) without reloading; elsewhere it is
drawn at each run of the page.
"""

from __future__ import annotations

import time

import streamlit as st

from ..jobs import health
from . import errors, launcher, logic, state

ADVICE = {
    health.FULL: "free some space on the server's disk",
    health.READ_ONLY: "make the studio's data folder writable again",
}


def lines(problem: str | None, status: dict | None) -> list[tuple[str, str]]:
    """(kind, markdown) of each banner for a disk state and the launcher's status (pure)."""
    out = []
    if problem is not None:
        out.append(
            (
                "error",
                f"**{health.WORDS[problem].capitalize()}: new pictures are paused.** Pictures already "
                "queued or painting wait and go on by themselves when the server can write again; "
                f"nothing is lost. (Whoever runs the studio: {ADVICE[problem]}.)",
            )
        )
    if status and status.get("failing"):
        retry = status.get("retry_at")
        when = (
            f"next try in {logic.format_duration(max(0.0, retry - time.time()))}"
            if isinstance(retry, (int, float))
            else "trying again"
        )
        out.append(
            (
                "warning",
                f"**The painter keeps stopping**; it is restarted by itself ({when}). Queued pictures "
                "wait their turn; nothing is lost.",
            )
        )
    return out


def disk_problem() -> str | None:
    """The data folder's disk state now: ``health.FULL``, ``health.READ_ONLY`` or None."""
    return health.disk_problem(state.data_dir())


@errors.guard()
def banner() -> None:
    """Draw the banners that apply now (nothing when all is well)."""
    for kind, text in lines(disk_problem(), launcher.read_status()):
        (st.error if kind == "error" else st.warning)(text, icon=":material/warning:")
