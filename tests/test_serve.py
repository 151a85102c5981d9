"""The studio's web server makes no request to the outside world (app/serve.py).

The real server runs with a ``sitecustomize`` that records every name lookup and every TCP
connection its Python code attempts outside this machine. A page load, and a websocket from a
foreign origin (another site in the user's browser reaching for the studio), must record none,
and the foreign websocket must be refused.
"""

from __future__ import annotations

import base64
import http.client
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from painterly.app import streamlit_command

pytestmark = pytest.mark.timeout(120)

RECORDER = """
import os, socket
_LOG = os.environ["PAINTERLY_NET_LOG"]
_LOCAL = {"", "localhost", "127.0.0.1", "::1", "0.0.0.0", None}

def _note(what):
    with open(_LOG, "a") as f:
        f.write(what + "\\n")

_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOCAL:
        _note(f"lookup {name}")
    return _getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = getaddrinfo

_connect = socket.socket.connect
def connect(self, address):
    if self.type == socket.SOCK_STREAM and self.family in (socket.AF_INET, socket.AF_INET6):
        if address[0] not in _LOCAL and not str(address[0]).startswith("127."):
            _note(f"connect {address[0]}:{address[1]}")
    return _connect(self, address)
socket.socket.connect = connect
"""


def _websocket_status(port: int, origin: str) -> int:
    """The status a websocket handshake to the studio gets from ``origin``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(
        "GET",
        "/_stcore/stream",
        headers={
            "Host": f"127.0.0.1:{port}",
            "Origin": origin,
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        },
    )
    status = conn.getresponse().status
    conn.close()
    return status


def test_the_studio_server_calls_nobody(tmp_path: Path, free_port: int, wait_serving) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(RECORDER)
    log = tmp_path / "net.log"
    log.touch()
    port = free_port
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]),
        "PAINTERLY_NET_LOG": str(log),
        "PAINTERLY_HOME": str(tmp_path / "data"),
    }
    out = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(streamlit_command("127.0.0.1", port), env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_serving(url, proc, tmp_path / "server.log")
        assert b"<html" in urllib.request.urlopen(url, timeout=10).read().lower()
        # The same origin is welcome; another site's page is refused without asking the internet.
        assert _websocket_status(port, f"http://127.0.0.1:{port}") == 101
        assert _websocket_status(port, "http://evil.example") == 403
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        out.close()
    assert log.read_text() == "", "the server reached out: " + log.read_text()


def test_an_upload_reply_survives_a_rerun_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stuck "Paint it" (issue 15): a run starting cleared the reply to an upload box's
    request for upload URLs before it was sent; the browser waited for it forever, the box
    stayed empty without a word. The server keeps such replies (and still drops the rest)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    from painterly.app import serve

    def queue() -> tuple[ForwardMsgQueue, ForwardMsg]:
        q = ForwardMsgQueue()
        reply = ForwardMsg()
        reply.file_urls_response.response_id = "upload-1"
        q.enqueue(reply)
        stale = ForwardMsg()
        stale.delta.new_element.markdown.body = "from the run being replaced"
        stale.metadata.delta_path[:] = [0, 0]
        q.enqueue(stale)
        return q, reply

    monkeypatch.setattr(ForwardMsgQueue, "clear", ForwardMsgQueue.clear)  # restored after the test
    q, reply = queue()
    q.clear(retain_lifecycle_msgs=True)
    assert reply not in q.flush()  # Streamlit's own behaviour: the reply is lost
    serve.keep_upload_replies()
    serve.keep_upload_replies()  # once is enough; twice changes nothing
    q, reply = queue()
    q.clear(retain_lifecycle_msgs=True)  # a run starts
    assert q.flush() == [reply]  # the reply goes out; the replaced run's output does not
    assert q.flush() == []  # and a flush still empties the queue
