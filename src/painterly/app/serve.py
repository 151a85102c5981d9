"""``python -m painterly.app.serve run main.py ...``: Streamlit's own command line, making no
request to the outside world.

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


def main() -> None:
    from streamlit import net_util
    from streamlit.web import cli

    net_util.get_external_ip = _no_external_ip  # read at call time by the origin check and the banner
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main()
