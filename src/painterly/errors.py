"""How an error reads on one line, wherever a person sees it (the CLI, a batch's report, a
Ray task's failure): one room, so every front end words the same error the same way."""

from __future__ import annotations


def one_line(e: BaseException) -> str:
    """``e``'s message on one line; an OSError as 'path: reason' rather than '[Errno 2] ...'."""
    if isinstance(e, OSError) and e.strerror:
        text = f"{e.filename}: {e.strerror}" if e.filename else e.strerror
    else:
        text = str(e) or type(e).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
