"""``python -m painterly.app.serve run main.py ...``: Streamlit's own command line, making no
request to the outside world, keeping every upload's reply (``keep_upload_replies``), and
ready for the first visitor (``warm_up``).

Streamlit looks the machine's public address up over HTTP (checkip.amazonaws.com) to print an
"External URL" and, whenever a websocket comes from an origin it does not know (another site
in the user's browser trying to reach the studio), to see whether that origin is this machine.
A studio on this computer has no use for its public address, and a stranger's page must not make
it call out: the lookup answers "unknown" here, so such an origin is simply refused. Nothing
else changes (the internal address still comes from a UDP socket's route, which sends no packet).
"""

from __future__ import annotations

from typing import Optional


def _no_external_ip() -> Optional[str]:
    return None


def keep_upload_replies() -> None:
    """Never drop the server's reply to an upload box's request for upload URLs.

    When a script run starts, Streamlit clears the session's messages not yet sent, keeping
    only the run's lifecycle messages. The reply to a file uploader's "where do I send this
    file?" is not one of them, so a reply still waiting in the queue at that moment is lost;
    the browser waits for it without a timeout, and the upload box stays empty without a word
    (the file never reaches the server, "Paint it" stays disabled). On an idle server the
    reply leaves at once; with eight browsers on two cores it often waits long enough for a
    rerun to start (benchmarks/RESULTS.md, "Eight people at once"). Such replies are kept.
    """
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    from . import errors  # the studio's log (the server's stderr)

    clear = ForwardMsgQueue.clear
    if getattr(clear, "keeps_upload_replies", False):
        return

    def keeping(self, retain_lifecycle_msgs=False, fragment_ids_this_run=None):  # type: ignore[no-untyped-def]
        replies = [m for m in self._queue if m.WhichOneof("type") == "file_urls_response"]
        clear(self, retain_lifecycle_msgs, fragment_ids_this_run)
        if retain_lifecycle_msgs:  # a run starting (a flush clears what it has just sent)
            kept = {id(m) for m in self._queue}
            saved = [m for m in replies if id(m) not in kept]
            if saved:
                self._queue.extend(saved)
                errors.log.info("kept %d upload reply(ies) that a starting run would have dropped", len(saved))

    keeping.keeps_upload_replies = True  # type: ignore[attr-defined]
    ForwardMsgQueue.clear = keeping  # type: ignore[method-assign]


def warm_up() -> None:
    """What the first visitor would otherwise wait for, done as the server starts: the pages'
    modules imported (the script only re-runs them), and this machine's timing begun."""
    from . import form, gallery, health, jobpage, state  # noqa: F401 -- imported to be ready

    state.calibrate()


def main() -> None:
    from streamlit import net_util
    from streamlit.web import cli

    net_util.get_external_ip = _no_external_ip  # read at call time by the origin check and the banner
    keep_upload_replies()
    warm_up()
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
